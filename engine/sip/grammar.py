"""Low-level pieces of the RFC 3261 grammar shared by the header parsers.

Everything here works on ``str`` header values that have already been unfolded (line folding
replaced by a single space). Values come from the wire decoded as UTF-8 with ``surrogateescape``
so that any byte survives a round trip.
"""

import re

from .errors import LocalProtocolError, ParseError

#: Distinct texts each parser of repeated values (URIs, addresses, CSeq) remembers. A peer's URIs
#: come back every call; a call's tagged From and To only within its first exchanges, so a short
#: memory is enough. Parsed values are immutable by convention: shared, never changed in place.
PARSED_TEXTS = 1024

#: RFC 3261 ``token`` characters.
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(TOKEN)
#: ``;name=value;flag`` with token names and values and no whitespace: the common case, which
#: :func:`simple_params` turns into the same dict as :func:`parse_params`.
SIMPLE_PARAMS = rf"((?:;{TOKEN}(?:={TOKEN})?)*)"
HOSTNAME = r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9.])?"
PORT = r"(?:6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|\d{1,4})"
SIMPLE_USER = r"[A-Za-z0-9\-_.!~*'()&=+$,]+"
#: The common shape of a SIP URI (no password, escapes, IPv6 or headers).
SIMPLE_SIP_URI = rf"(sips?):(?:({SIMPLE_USER})@)?({HOSTNAME})(?::({PORT}))?{SIMPLE_PARAMS}"


def is_token(text: str) -> bool:
    """True if ``text`` is a non-empty RFC 3261 token."""
    return bool(text) and TOKEN_RE.fullmatch(text) is not None


#: Header names already found to be tokens (a bounded set: names repeat).
_CHECKED_NAMES: set[str] = set()


def check_header_value(name: str, value: str) -> None:
    """Refuse a header name or value that would inject a line into a message."""
    if name not in _CHECKED_NAMES:
        if not is_token(name):
            raise LocalProtocolError(f"header name {name!r} is not a token")
        if len(_CHECKED_NAMES) < 4096:
            _CHECKED_NAMES.add(name)
    if "\r" in value or "\n" in value or "\x00" in value:
        raise LocalProtocolError(f"header {name} holds CR, LF or NUL")


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split ``text`` at ``sep`` where it is outside double quotes and outside ``<...>``.

    Backslash escapes inside quoted strings are honoured. An unterminated quoted string or ``<``
    raises ParseError.
    """
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == sep and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_quotes:
        raise ParseError("unterminated quoted string")
    if in_angle:
        raise ParseError("unterminated <")
    parts.append(text[start:])
    return parts


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` parameters (the text after the first ``;``).

    Names are lower-cased; LWS around ``;`` and ``=`` is allowed; a value may be a quoted string
    (kept with its quotes). Empty names are an error.
    """
    params: dict[str, str | None] = {}
    if not text:
        return params
    for item in split_outside_quotes(text, ";"):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not is_token(name):
            raise ParseError(f"bad parameter {item.strip()!r} in {what}")
        if eq:
            value = value.strip()
            if not value:
                raise ParseError(f"empty value for parameter {name!r} in {what}")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def simple_params(text: str) -> dict[str, str | None]:
    """Parameters already matched by ``SIMPLE_PARAMS`` (text starts with ``;`` or is empty)."""
    params: dict[str, str | None] = {}
    if text:
        for item in text[1:].split(";"):
            name, eq, value = item.partition("=")
            params[name.lower()] = value if eq else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    """The inverse of :func:`parse_params`, with a leading ``;`` per parameter."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def unquote(text: str) -> str:
    """Remove surrounding double quotes and backslash escapes from a quoted string."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def quote(text: str) -> str:
    """Make a quoted string of ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_uint(text: str, what: str, maximum: int) -> int:
    """Parse a decimal number in 0..maximum, or raise ParseError naming ``what``."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 12:
        raise ParseError(f"{what} is not a number: {text!r}")
    value = int(text)
    if value > maximum:
        raise ParseError(f"{what} out of range: {text}")
    return value
