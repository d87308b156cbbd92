"""What a user-agent server checks before it acts on a request (RFC 3261 section 8.2).

:func:`validate_request` returns the rejection to send (505, 400, 416, 405, 501, 420, 415, 406)
or None when the request may go on to the dialog layer or the incoming-call policy.
:func:`answer_without_dialog` says what a UA answers to a request that matched no dialog.
:func:`response_is_acceptable` drops responses that a UAC must discard (RFC 3261 8.1.3.3).
"""

from dataclasses import dataclass, field

from .errors import ParseError
from .headers import SINGLE_VALUED
from .message import STANDARD_METHODS, Request, Response
from .uri import SipUri, TelUri

#: Every method RFC 3261 and its common extensions define; others are answered 501.
KNOWN_METHODS = frozenset(STANDARD_METHODS)


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What this user agent implements, for the checks of RFC 3261 section 8.2."""

    #: Methods accepted (others that are known get 405 with Allow).
    allowed_methods: frozenset[str] = frozenset(
        ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "PRACK", "UPDATE", "INFO", "MESSAGE",
         "NOTIFY", "REFER")
    )  # fmt: skip
    #: Option tags understood in Require.
    supported: frozenset[str] = frozenset({"100rel"})
    #: Methods whose body the engine itself must understand (session descriptions).
    session_methods: frozenset[str] = frozenset({"INVITE", "ACK", "PRACK", "UPDATE"})
    #: Body types accepted for those methods.
    session_types: frozenset[str] = frozenset(
        {"application/sdp", "multipart/mixed", "multipart/alternative"}
    )

    @property
    def allow_header(self) -> str:
        """The value of an Allow header listing ``allowed_methods`` in a stable order."""
        order = [m for m in STANDARD_METHODS if m in self.allowed_methods]
        return ", ".join(order + sorted(self.allowed_methods - set(order)))

    @property
    def accept_header(self) -> str:
        """The value of an Accept header for session methods."""
        return ", ".join(sorted(self.session_types))


DEFAULT_POLICY = UasPolicy()


@dataclass(frozen=True, slots=True)
class Rejection:
    """A final response to send instead of processing a request."""

    status: int
    reason: str
    #: Why, in words for a log or a Warning header.
    detail: str
    #: Extra header lines the response must carry (Allow, Unsupported, Accept...).
    headers: tuple[tuple[str, str], ...] = field(default=())


def validate_request(request: Request, policy: UasPolicy = DEFAULT_POLICY) -> Rejection | None:
    """The rejection a UAS sends for ``request``, or None if it may be processed."""
    if request.version.upper() != "SIP/2.0":
        return Rejection(505, "Version Not Supported", f"{request.version} is not SIP/2.0")
    try:
        _check_basic_syntax(request)
    except ParseError as error:
        return Rejection(400, "Bad Request", str(error))
    uri = request.uri
    if not isinstance(uri, SipUri | TelUri):
        return Rejection(416, "Unsupported URI Scheme", f"scheme {uri.scheme!r}")
    method = request.method
    if method not in policy.allowed_methods:
        allow = (("Allow", policy.allow_header),)
        if method in KNOWN_METHODS:
            return Rejection(405, "Method Not Allowed", f"{method} is not accepted", allow)
        return Rejection(501, "Not Implemented", f"unknown method {method!r}", allow)
    try:
        _check_other_syntax(request)
    except ParseError as error:
        return Rejection(400, "Bad Request", str(error))
    try:
        return _check_extensions_and_content(request, policy)
    except ParseError as error:  # a Require or Accept value with unbalanced quotes or <
        return Rejection(400, "Bad Request", str(error))


def _check_extensions_and_content(request: Request, policy: UasPolicy) -> Rejection | None:
    if request.method not in ("ACK", "CANCEL") and "require" in request.headers.index():
        unknown = [tag for tag in request.headers.values("require") if tag not in policy.supported]
        if unknown:
            unsupported = ", ".join(unknown)
            return Rejection(
                420, "Bad Extension", f"unsupported {unsupported}", (("Unsupported", unsupported),)
            )
    return _check_content(request, policy)


MANDATORY = ("via", "from", "to", "call-id", "cseq")


def _check_basic_syntax(request: Request) -> None:
    index = request.headers.index()
    for name in MANDATORY:
        if name not in index:
            raise ParseError(f"no {name} header")
    uri = request.uri
    if isinstance(uri, SipUri) and uri.headers is not None:
        raise ParseError("the Request-URI must not carry headers")
    for name in SINGLE_VALUED:
        positions = index.get(name)
        if positions is not None and len(positions) > 1:
            raise ParseError(f"{name} appears more than once")
    if request.cseq.method != request.method:
        raise ParseError(f"CSeq method {request.cseq.method} differs from {request.method}")
    request.from_  # noqa: B018 - parse in full (URI included) now
    request.to  # noqa: B018


def _check_other_syntax(request: Request) -> None:
    index = request.headers.index()
    if "max-forwards" in index:
        request.max_forwards()
    if "contact" in index:
        contact = request.headers.get("contact")
        if contact is not None and contact.strip() != "*":
            request.contacts()
    for name in ("route", "record-route"):
        if name in index:
            request.routes(name)
    if "content-type" in index:
        content_type = request.content_type
        if content_type is not None and content_type.count("/") != 1:
            raise ParseError(f"malformed Content-Type {content_type!r}")


def _check_content(request: Request, policy: UasPolicy) -> Rejection | None:
    if request.method not in policy.session_methods:
        return None
    accept = (("Accept", policy.accept_header),)
    encoding = request.headers.get("content-encoding")
    if request.body and encoding and encoding.strip().lower() != "identity":
        return Rejection(415, "Unsupported Media Type", f"Content-Encoding {encoding}", accept)
    content_type = request.content_type
    if request.body and content_type not in policy.session_types:
        return Rejection(
            415, "Unsupported Media Type", f"cannot read a body of {content_type}", accept
        )
    if request.method == "INVITE" and "accept" in request.headers:
        offered = {v.split(";", 1)[0].strip().lower() for v in request.headers.values("accept")}
        if offered and not offered & {"application/sdp", "application/*", "*/*"}:
            return Rejection(406, "Not Acceptable", "Accept does not include application/sdp")
    return None


def answer_without_dialog(request: Request) -> int | None:
    """The status a UA answers to a valid request that matched no dialog and no transaction.

    None means: no automatic answer. For INVITE the incoming-call policy decides; an ACK is
    absorbed (it is never answered).
    """
    method = request.method
    if method in ("INVITE", "ACK"):
        if method == "INVITE" and request.to.tag is not None:
            return 481  # a re-INVITE for a dialog we do not have
        return None
    if method == "OPTIONS" and request.to.tag is None:
        return 200
    if method in ("BYE", "CANCEL", "PRACK", "UPDATE") or request.to.tag is not None:
        return 481
    return 405


def response_is_acceptable(response: Response) -> str | None:
    """None if a UAC may process ``response``, else why it must be discarded."""
    for name in MANDATORY:
        if name not in response.headers:
            return f"no {name} header"
    if len(response.vias) != 1:
        return "a response must carry exactly one Via at the UAC"
    try:
        response.from_  # noqa: B018
        response.to  # noqa: B018
    except ParseError as error:
        return str(error)
    return None
