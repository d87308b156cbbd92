"""Building responses to requests (RFC 3261 section 8.2.6), and to requests too broken to parse."""

import contextlib
import re

from .errors import ParseError
from .fields import NameAddr
from .grammar import check_header_value
from .headers import Headers, header_key
from .message import Request, Response

#: Reason phrases of RFC 3261 section 21 and the common extensions.
REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip

_SET_BY_BODY = frozenset({"content-type", "content-length"})
_LENGTH = frozenset({"content-length"})
_RAW_HEADER_RE = re.compile(
    rb"^(via|v|from|f|to|t|call-id|i|cseq)[ \t]*:[ \t]*([^\r\n]*)\r?$", re.I | re.M
)


def reason_for(status: int) -> str:
    """The standard reason phrase of ``status`` (or a generic one for its class)."""
    return REASONS.get(status) or REASONS[status // 100 * 100]


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to ``request``: Via, From, Call-ID and CSeq copied, To with ``to_tag`` added
    when the request's To has none (never on 100 Trying), then ``headers``, then Content-Type
    (with a body and ``content_type``) and Content-Length. The body decides: a Content-Length
    line in ``headers`` is left out, and so is a Content-Type line unless it types the body."""
    source = request.headers
    to = source.get("to") or ""
    to_addr: NameAddr | None = None
    if to_tag is not None and status > 100 and request.to.tag is None:
        to = f"{to};tag={to_tag}"
        to_addr = request.to.with_tag(to_tag)
    # Values copied from a parsed request hold no CR, LF or NUL; only ``headers`` is checked.
    items = [("Via", value) for value in source.get_all("via")]
    items += [("From", value) for value in source.get_all("from")]
    items.append(("To", to))
    items += [("Call-ID", value) for value in source.get_all("call-id")]
    items += [("CSeq", value) for value in source.get_all("cseq")]
    typed = content_type is not None and bool(body)
    left_out = _SET_BY_BODY if typed or not body else _LENGTH
    for name, value in headers:
        check_header_value(name, value)
        if header_key(name) not in left_out:
            items.append((name, value))
    if typed:
        items.append(("Content-Type", content_type))
    items.append(("Content-Length", str(len(body))))
    phrase = reason if reason is not None else reason_for(status)
    response = Response(status, phrase, Headers(items, checked=True), body)
    # The copied values parse as the request's did (the transaction layer reads them at once);
    # a request that lacks one gets a response that lacks it, and no parsed form.
    with contextlib.suppress(ParseError):
        response.headers.remember("cseq", request.cseq)
        response.headers.remember("to", to_addr or request.to)
    return response


def error_response_bytes(data: bytes, status: int, reason: str | None = None) -> bytes | None:
    """A response to a request that could not be parsed, built from its raw header lines.

    Copies Via, From, To, Call-ID and CSeq as found; None when there is no Via to send it by.
    """
    found: list[tuple[bytes, bytes]] = []
    head = data.split(b"\r\n\r\n", 1)[0]
    for m in _RAW_HEADER_RE.finditer(head):
        found.append((m.group(1), m.group(2)))
    if not any(name.lower() in (b"via", b"v") for name, _ in found):
        return None
    phrase = (reason or reason_for(status)).encode("utf-8", "replace").replace(b"\r", b" ")
    lines = [b"SIP/2.0 %d %s" % (status, phrase.replace(b"\n", b" "))]
    lines += [name + b": " + value for name, value in found]
    lines.append(b"Content-Length: 0")
    return b"\r\n".join(lines) + b"\r\n\r\n"
