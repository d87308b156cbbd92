"""Command signatures, parameter binding (named and positional) and value validation.

Binding follows OpenSIPS's MI (MI-API.md section 2): named parameters must match one of the
command's allowed sets exactly; positional ones are matched by count, and a count that fits more
than one set is refused. Errors carry OpenSIPS's code, message and ``data``.

Validation then checks every value before the engine sees it: types, sizes, URIs (parsed with
``engine.sip.parse_uri``), header lines, sockets. A refusal names the parameter and says why:
``-32602 "Invalid params"``, data ``"Bad value for parameter 'ruri': ..."``.
"""

import ipaddress
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.sip import ParseError, SipUri, parse_uri

from .config import ENGINE_OWNED_HEADERS, MiConfig, canonical_header

INVALID_PARAMS = "Invalid params"
TOO_FEW = "Too few or too many parameters"
NO_MATCH = "Named parameters do not match"
AMBIGUOUS = "Ambiguous call"

#: RFC 3261 token characters (header names, methods).
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_MEDIA_TYPE_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~]+/[A-Za-z0-9\-.!%*_+`'~]+"
    r"(?:[ \t]*;[ \t]*[A-Za-z0-9\-.!%*_+`'~]+=(?:[A-Za-z0-9\-.!%*_+`'~]+|\"[^\"\\\r\n]*\"))*"
)
_INT_RE = re.compile(r"[+-]?[0-9]{1,10}")
_SOCKET_RE = re.compile(
    r"(?P<proto>[A-Za-z]+):(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]/]*))"
    r":(?P<port>[0-9]{1,5})(?P<path>/.*)?"
)
#: Longest URI, key, reason... accepted (far beyond real use, far below harm).
MAX_URI = 2048
MAX_KEY = 256
MAX_REASON = 256
MAX_METHOD = 32
MAX_FLAGS = 64
MAX_SOCKET = 512
MAX_HEADER_LINES = 64


class MiError(Exception):
    """A JSON-RPC error: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code} {message}" + (f": {data}" if data is not None else ""))
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid(data: str) -> MiError:
    """-32602 "Invalid params" with ``data``."""
    return MiError(-32602, INVALID_PARAMS, data)


def bad_value(name: str, why: str) -> MiError:
    """-32602 naming parameter ``name`` and why its value is refused."""
    return invalid(f"Bad value for parameter '{name}': {why}")


@dataclass(frozen=True)
class Signature:
    """What a command accepts: names in positional order, which are integers, dependencies."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    ints: frozenset[str] = frozenset()
    #: Parameter -> the parameter it needs (``content_type`` only with ``body``).
    needs: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """Every parameter name, in positional order."""
        return self.required + self.optional

    def recipes(self) -> list[tuple[str, ...]]:
        """Every allowed parameter set, each in positional order (as OpenSIPS's recipes)."""
        out = []
        for n in range(len(self.optional) + 1):
            for chosen in itertools.combinations(self.optional, n):
                if all(self.needs.get(p) in (None, *chosen) for p in chosen):
                    out.append(self.required + chosen)
        return out

    def bind(self, params: Any) -> dict[str, Any]:
        """Named values from ``params`` (an object, an array or absent), typed; MiError if not."""
        if params is None:
            params = {}
        if isinstance(params, dict):
            given = set(params)
            if given - set(self.names):
                raise invalid(NO_MATCH)
            if any(p in given and need not in given for p, need in self.needs.items()):
                raise invalid(NO_MATCH)
            if set(self.required) - given:
                raise invalid(TOO_FEW)
            named = dict(params)
        elif isinstance(params, list):
            matching = [r for r in self.recipes() if len(r) == len(params)]
            if not matching:
                raise invalid(TOO_FEW)
            if len(matching) > 1:
                raise invalid(AMBIGUOUS)
            named = dict(zip(matching[0], params, strict=True))
        else:
            raise MiError(-32600, "Invalid Request", "params must be an object or an array")
        return {name: self._typed(name, value) for name, value in named.items()}

    def _typed(self, name: str, value: Any) -> Any:
        if name in self.ints:
            return as_int(name, value)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_value(name, "not valid Unicode (a lone surrogate)") from None
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise invalid(f"Bad type for parameter '{name}'")


def as_int(name: str, value: Any) -> int:
    """A JSON number or a numeric string as an int; MiError "Bad type" otherwise."""
    if isinstance(value, bool):
        raise invalid(f"Bad type for parameter '{name}'")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**31:
        return int(value)
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip(" \t")):
        return int(value.strip(" \t"))
    raise invalid(f"Bad type for parameter '{name}'")


# -- value checks ---------------------------------------------------------------------------------


def check_line(name: str, value: str, limit: int, *, empty: bool = False) -> str:
    """One line of printable text: no CR, LF, NUL or other control character."""
    if not value and not empty:
        raise bad_value(name, "must not be empty")
    if len(value) > limit:
        raise bad_value(name, f"{len(value)} characters; at most {limit}")
    for c in value:
        if c in "\r\n\x00":
            raise bad_value(name, f"contains {_show(c)}, which would break the SIP message")
        if (ord(c) < 32 and c != "\t") or ord(c) == 127:
            raise bad_value(name, f"contains the control character {_show(c)}")
    return value


def check_uri(name: str, value: str, *, sip_only: bool) -> str:
    """A URI that ``engine.sip.parse_uri`` accepts (``<...>`` removed); sip:/sips: if asked."""
    text = check_line(name, value, MAX_URI).strip(" \t")
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if any(c in text for c in ' \t<>"'):
        raise bad_value(name, "a URI holds no spaces, quotes or angle brackets")
    try:
        uri = parse_uri(text)
    except ParseError as error:
        raise bad_value(name, f"not a valid URI ({error})") from None
    if sip_only and not isinstance(uri, SipUri):
        raise bad_value(name, "must be a sip: or sips: URI")
    return text


def check_party(name: str, value: str) -> str:
    """``to``/``from``: a URI, or ``display name,URI``."""
    text = check_line(name, value, MAX_URI).strip(" \t")
    uri_text = text
    if "," in text and not text.startswith(("sip:", "sips:", "tel:", "<")):
        display, uri_text = (part.strip() for part in text.split(",", 1))
        if any(c in display for c in '"\\<>'):
            raise bad_value(name, "the display name may not hold quotes, backslashes or <>")
    check_uri(name, uri_text, sip_only=False)
    return text


def check_method(name: str, value: str) -> str:
    """A SIP method: a token, upper-cased."""
    if not value or len(value) > MAX_METHOD or not _TOKEN_RE.fullmatch(value):
        raise bad_value(name, f"{_clip(value)} is not a SIP method name")
    return value.upper()


def check_content_type(value: str) -> str:
    """A media type (``text/plain``), or the header line ``Content-Type: text/plain\\r\\n``."""
    text = value
    if text.lower().startswith("content-type:") or text.lower().startswith("c:"):
        text = text.split(":", 1)[1]
        if text.endswith("\r\n"):
            text = text[:-2]
    text = text.strip(" \t")
    if len(text) > 256 or not _MEDIA_TYPE_RE.fullmatch(text):
        raise bad_value("content_type", f"{_clip(value)} is not a media type such as text/plain")
    return text


def check_extra_headers(value: str, config: MiConfig) -> str:
    """Header lines ``Name: value``, each ending in CRLF; no engine-owned header unless allowed."""
    if len(value.encode("utf-8")) > config.max_header_bytes:
        raise bad_value("extra_headers", f"longer than {config.max_header_bytes} bytes")
    if not value:
        return value
    if "\x00" in value:
        raise bad_value("extra_headers", "contains NUL")
    lines = value.split("\r\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_HEADER_LINES:
        raise bad_value("extra_headers", f"{len(lines)} lines; at most {MAX_HEADER_LINES}")
    for number, line in enumerate(lines, 1):
        where = f"line {number}"
        if "\r" in line or "\n" in line:
            raise bad_value("extra_headers", f"{where} holds a bare CR or LF; end lines with CRLF")
        name, colon, rest = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN_RE.fullmatch(name):
            raise bad_value("extra_headers", f"{where} {_clip(line)} is not 'Name: value'")
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in rest):
            raise bad_value("extra_headers", f"{where} ({name}) holds a control character")
        owned = canonical_header(name)
        if owned is not None and owned not in config.allow_headers:
            raise bad_value(
                "extra_headers",
                f"{where}: {owned} is written by the engine "
                f"({', '.join(ENGINE_OWNED_HEADERS)} are; allow one with mi.allow_headers)",
            )
    return value if value.endswith("\r\n") else value + "\r\n"


@dataclass(frozen=True, slots=True)
class EventSocket:
    """An ``event_subscribe`` destination: ``udp:HOST:PORT`` or ``tcp:HOST:PORT[/method]``."""

    proto: str
    host: str
    port: int
    #: For tcp: the JSON-RPC method to write instead of the event name.
    method: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.proto}:{host}:{self.port}" + (f"/{self.method}" if self.method else "")


def parse_event_socket(value: str) -> EventSocket:
    """Parse a subscriber socket; ValueError saying why not."""
    if len(value) > MAX_SOCKET:
        raise ValueError("socket is too long")
    m = _SOCKET_RE.fullmatch(value.strip(" \t"))
    if m is None:
        raise ValueError(f"{_clip(value)} is not udp:HOST:PORT or tcp:HOST:PORT[/method]")
    proto = m["proto"].lower()
    if proto not in ("udp", "tcp"):
        raise ValueError(f"unsupported protocol {m['proto']!r}: udp and tcp are")
    host = m["v6"] if m["v6"] is not None else m["host"]
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{_clip(host)} is not an IP address (names are not resolved)") from None
    if address.is_unspecified or address.is_multicast:
        raise ValueError(f"{host} cannot receive notifications")
    port = int(m["port"])
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is not in 1..65535")
    method = None
    if m["path"] is not None:
        if proto != "tcp":
            raise ValueError("only tcp: sockets take a /method")
        method = m["path"][1:]
        if not method or len(method) > 64 or not re.fullmatch(r"[A-Za-z0-9_.:\-]+", method):
            raise ValueError(f"{_clip(method)} is not a method name")
    return EventSocket(proto, str(address), port, method)


def _show(c: str) -> str:
    names = {"\r": "CR", "\n": "LF", "\x00": "NUL"}
    return names.get(c, f"U+{ord(c):04X}")


def _clip(value: str, limit: int = 40) -> str:
    text = value if len(value) <= limit else value[:limit] + "..."
    return repr(text)


def join_names(names: Iterable[str]) -> str:
    """``a, b, c`` (for messages)."""
    return ", ".join(names)
