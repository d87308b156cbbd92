"""SIP requests and responses: parsing from bytes, header access, serialising back to bytes.

Parsing is lazy where it can be: the start line, the header lines and the headers that routing and
transactions need (Via, From, To, Call-ID, CSeq, Content-Length) are parsed and checked at once;
every other header is parsed on first use. Structured values are cached in the ``Headers``.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from .errors import LocalProtocolError, ParseError
from .fields import (
    NAME_ADDR_SHAPE_RE,
    CSeq,
    NameAddr,
    Via,
    parse_cseq,
    parse_name_addr,
    parse_vias,
)
from .grammar import is_token, parse_uint
from .headers import KNOWN_SPELLINGS, Headers, header_key
from .uri import Uri, parse_uri


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes refused before anything is allocated for them."""

    max_message: int = 65536
    max_headers: int = 256
    max_header_line: int = 8192


DEFAULT_LIMITS = Limits()
T = TypeVar("T")

_FOLD_RE = re.compile(r"[ \t]*\r\n[ \t]+")
_REQUEST_LINE_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+) (\S+) (SIP/\d{1,3}\.\d{1,3})")
#: The methods of RFC 3261 and its common extensions, in the order an Allow header lists them.
STANDARD_METHODS = (
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "PRACK", "UPDATE", "INFO", "MESSAGE", "NOTIFY",
    "REFER", "REGISTER", "SUBSCRIBE", "PUBLISH",
)  # fmt: skip
_STANDARD_METHOD_SET = frozenset(STANDARD_METHODS)
_STATUS_LINE_RE = re.compile(r"SIP/(\d{1,3}\.\d{1,3}) (\d{3})(?: (.*))?", re.S)
_VERSION_AT_END_RE = re.compile(r"\s*SIP/\d+\.\d+\s*$", re.I)


# -- header parsers used through Headers.parsed -------------------------------------------------


def _parse_all_vias(headers: Headers) -> list[Via]:
    vias: list[Via] = []
    for line in headers.get_all("via"):
        vias.extend(parse_vias(line))
    return vias


def _single(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise ParseError(f"no {name} header")
    return value


def _parse_from(headers: Headers) -> NameAddr:
    return parse_name_addr(_single(headers, "from"), "From")


def _parse_to(headers: Headers) -> NameAddr:
    return parse_name_addr(_single(headers, "to"), "To")


def _parse_call_id(headers: Headers) -> str:
    value = _single(headers, "call-id")
    if not value or " " in value or "\t" in value:
        raise ParseError("malformed Call-ID")
    return value


def _parse_cseq_header(headers: Headers) -> CSeq:
    return parse_cseq(_single(headers, "cseq"))


class _ParsedHeader(Generic[T]):
    """A message attribute: a routing header parsed on first use and cached in the headers.

    Every layer reads these many times per message, so the cache is read here directly (one
    call per read, not a property calling ``Headers.parsed``).
    """

    def __init__(self, name: str, parser: Callable[[Headers], T], doc: str) -> None:
        self._name = name
        self._parser = parser
        self.__doc__ = doc

    @overload
    def __get__(self, message: None, owner: type | None = None) -> "_ParsedHeader[T]": ...
    @overload
    def __get__(self, message: "Message", owner: type | None = None) -> T: ...
    def __get__(self, message: "Message | None", owner: type | None = None) -> Any:
        if message is None:
            return self
        headers = message.headers
        value = headers._cache.get(self._name)
        if value is None:
            value = headers.parsed(self._name, self._parser)
        return value


class Message:
    """What requests and responses share: headers, body, and the parsed routing headers."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers, body: bytes = b"") -> None:
        self.headers = headers
        self.body = body

    # -- routing headers, parsed on first use and cached -------------------------------------

    vias = _ParsedHeader("via", _parse_all_vias, "Every Via value, top first.")
    from_ = _ParsedHeader("from", _parse_from, "The From header.")
    to = _ParsedHeader("to", _parse_to, "The To header.")
    call_id = _ParsedHeader("call-id", _parse_call_id, "The Call-ID header.")
    cseq = _ParsedHeader("cseq", _parse_cseq_header, "The CSeq header.")

    @property
    def top_via(self) -> Via:
        """The first Via value."""
        vias = self.vias
        if not vias:
            raise ParseError("no Via header")
        return vias[0]

    @property
    def content_type(self) -> str | None:
        """The media type of the body (``type/subtype``, lower case, no parameters), or None."""
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None

    def contacts(self) -> list[NameAddr]:
        """The Contact values (``*`` is not an address: see ``headers.get('contact')``)."""
        return self.headers.parsed(
            "contact", lambda h: [parse_name_addr(v, "Contact") for v in h.values("contact")]
        )

    def routes(self, name: str = "route") -> list[NameAddr]:
        """The Route (or Record-Route) values, in order."""
        return self.headers.parsed(
            name, lambda h: [parse_name_addr(v, name) for v in h.values(name)]
        )

    def max_forwards(self) -> int | None:
        """The Max-Forwards value, or None when absent."""
        value = self.headers.get("max-forwards")
        return None if value is None else parse_uint(value, "Max-Forwards", 255)

    # -- serialising -----------------------------------------------------------------------

    def start_line(self) -> str:
        raise NotImplementedError

    def set_body(self, body: bytes, content_type: str | None = None) -> None:
        """Replace the body and set Content-Length (and Content-Type when given)."""
        self.body = body
        if content_type is not None:
            self.headers.set("Content-Type", content_type)
        elif not body:
            self.headers.remove("content-type")
        self.headers.set("Content-Length", str(len(body)))

    def to_bytes(self) -> bytes:
        """The message as it goes on the wire."""
        head = "".join([self.start_line(), "\r\n", *(f"{n}: {v}\r\n" for n, v in self.headers)])
        return head.encode("utf-8", "surrogateescape") + b"\r\n" + self.body

    __bytes__ = to_bytes

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self.start_line() == other.start_line()  # type: ignore[attr-defined]
            and self.headers == other.headers  # type: ignore[attr-defined]
            and self.body == other.body  # type: ignore[attr-defined]
        )

    __hash__ = None  # type: ignore[assignment]


class Request(Message):
    """A SIP request. ``uri`` is parsed on first use (ParseError if malformed)."""

    __slots__ = ("_uri", "method", "uri_text", "version")

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers if headers is not None else Headers(), body)
        if not is_token(method):
            raise LocalProtocolError(f"method {method!r} is not a token")
        self.method = method
        self.version = version
        if isinstance(uri, str):
            if not uri or any(c in uri for c in " \t\r\n\x00"):
                raise LocalProtocolError(f"bad Request-URI {uri!r}")
            self.uri_text = uri
            self._uri: Uri | None = None
        else:
            self.uri_text = str(uri)
            self._uri = uri

    @property
    def uri(self) -> Uri:
        """The Request-URI, parsed."""
        if self._uri is None:
            self._uri = parse_uri(self.uri_text)
        return self._uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri_text} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri_text}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status", "version")

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers if headers is not None else Headers(), body)
        if not 100 <= status <= 699:
            raise LocalProtocolError(f"status {status} is not in 100..699")
        if "\r" in reason or "\n" in reason or "\x00" in reason:
            raise LocalProtocolError("reason phrase holds CR, LF or NUL")
        self.status = status
        self.reason = reason
        self.version = version

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


# -- parsing -------------------------------------------------------------------------------------


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one whole message (a datagram, or one framed from a stream).

    Raises ParseError whose ``status_hint`` is the status to answer (400, 413, 505...) for a
    request, or None when the message must be dropped (responses, unrecognisable junk).
    """
    if len(data) > limits.max_message:
        raise ParseError(f"message of {len(data)} bytes exceeds {limits.max_message}", 513)
    end = data.find(b"\r\n\r\n")
    if end < 0:
        # No empty line: everything is header (a bodiless message that lost its last CRLF).
        head_bytes, rest = data.rstrip(b"\r\n"), b""
    else:
        head_bytes, rest = data[:end], data[end + 4 :]
    head = head_bytes.decode("utf-8", "surrogateescape")
    line_end = head.find("\r\n")
    start = head if line_end < 0 else head[:line_end]
    is_response = start.startswith("SIP/")
    try:
        message = _parse_start_line(start)
        body_text = "" if line_end < 0 else head[line_end + 2 :]
        message.headers = _parse_header_block(body_text, limits)
        message.body = _frame_body(message.headers, rest, limits)
        _check_routing_headers(message)
    except ParseError as error:
        if is_response:
            error.status_hint = None
        raise
    return message


def _parse_start_line(line: str) -> Request | Response:
    if line.startswith("SIP/"):
        m = _STATUS_LINE_RE.fullmatch(line)
        if m is None:
            raise ParseError(f"malformed status line {line[:80]!r}", None)
        version, code, reason = m.groups()
        status = int(code)
        if not 100 <= status <= 699 or version != "2.0":
            raise ParseError(f"unusable status line {line[:80]!r}", None)
        response = Response.__new__(Response)
        response.status, response.reason, response.version = status, reason or "", "SIP/2.0"
        return response
    parts = line.split(" ")
    if len(parts) == 3 and parts[2] == "SIP/2.0" and parts[0] in _STANDARD_METHOD_SET and parts[1]:
        request = Request.__new__(Request)
        request.method, request.uri_text, request.version = parts
        request._uri = None
        return request
    m = _REQUEST_LINE_RE.fullmatch(line)
    if m is None:
        hint = 400 if _VERSION_AT_END_RE.search(line) else None
        raise ParseError(f"malformed request line {line[:80]!r}", hint)
    request = Request.__new__(Request)
    request.method, request.uri_text, request.version = m.groups()
    request._uri = None
    return request


def _parse_header_block(text: str, limits: Limits, unfolded: bool = False) -> Headers:
    if not text:
        return Headers([], checked=True)
    lines = text.split("\r\n")
    if len(lines) > limits.max_headers:
        raise ParseError(f"more than {limits.max_headers} header lines")
    if text.count("\r") != len(lines) - 1 or text.count("\n") != len(lines) - 1:
        raise ParseError("bare CR or LF in the header block")
    known = KNOWN_SPELLINGS
    items: list[tuple[str, str]] = []
    index: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        name, colon, value = line.partition(":")
        key = known.get(name)
        if key is None:
            if i and not unfolded and line[:1] in (" ", "\t"):
                # line folding (rare): unfold all, then start again
                return _parse_header_block(_FOLD_RE.sub(" ", text), limits, unfolded=True)
            name = name.rstrip(" \t")
            if not colon or not is_token(name):
                raise ParseError(f"malformed header line {line[:80]!r}")
            key = header_key(name)
        items.append((name, value.strip(" \t")))
        positions = index.get(key)
        if positions is None:
            index[key] = [i]
        else:
            positions.append(i)
    if len(text) > limits.max_header_line and any(
        len(v) > limits.max_header_line for _, v in items
    ):
        raise ParseError(f"a header line is longer than {limits.max_header_line} bytes")
    return Headers.parsed_from_wire(items, index)


def content_length(headers: Headers, limits: Limits = DEFAULT_LIMITS) -> int | None:
    """The Content-Length, None when absent; ParseError if malformed, conflicting or too big."""
    values = headers.get_all("content-length")
    if not values:
        return None
    lengths = {v.strip() for v in values}
    if len(lengths) > 1:
        raise ParseError("conflicting Content-Length values")
    return parse_uint(lengths.pop(), "Content-Length", limits.max_message)


def _frame_body(headers: Headers, rest: bytes, limits: Limits) -> bytes:
    positions = headers._lookup().get("content-length")
    if positions is None:
        return rest
    value = headers._items[positions[0]][1]
    if len(positions) == 1 and value.isdigit() and len(value) < 10:
        length = int(value)
        if length > limits.max_message:
            raise ParseError(f"Content-Length {length} exceeds {limits.max_message}")
    else:
        length = content_length(headers, limits) or 0
    if length > len(rest):
        raise ParseError(f"Content-Length {length} but only {len(rest)} bytes of body")
    return rest[:length]


_ADDRESS_HEADERS = (("from", _parse_from), ("to", _parse_to))


def _check_routing_headers(message: Request | Response) -> None:
    """Parse the Request-URI and the routing headers that are present, so that a malformed one
    is refused at the door. Whether the mandatory ones are all there is the validator's question
    (a UAS answers 400 to a request that lacks one).

    Via, CSeq and the Request-URI, which every layer above reads, are parsed in full now and
    cached (the URI parser remembers the URIs it saw: a peer's come back every call). From and
    To are only checked for shape; their URIs are parsed on first use.
    """
    if isinstance(message, Request):
        message.uri  # noqa: B018 - parse now
    headers = message.headers
    index = headers._lookup()
    if "via" in index:
        headers.parsed("via", _parse_all_vias)
    items = headers._items
    for key, parser in _ADDRESS_HEADERS:
        positions = index.get(key)
        if positions is not None and NAME_ADDR_SHAPE_RE.fullmatch(items[positions[0]][1]) is None:
            headers.parsed(key, parser)
    positions = index.get("call-id")
    if positions is not None:
        call_id = items[positions[0]][1]
        if not call_id or " " in call_id or "\t" in call_id:
            raise ParseError("malformed Call-ID")
    if "cseq" in index:
        headers.parsed("cseq", _parse_cseq_header)
