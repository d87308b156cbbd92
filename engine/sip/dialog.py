"""SIP dialogs (RFC 3261 section 12): state, in-dialog requests, the ACK for a 2xx.

A dialog is identified by Call-ID, local tag and remote tag. The UAC side creates one per To-tag
it sees in a 1xx or 2xx to its INVITE (so a forked INVITE gives several early dialogs); the UAS
side creates one when it answers an INVITE with a tag. The dialog computes the Request-URI and
Route set of every request it sends (loose and strict routing), keeps both CSeq numbers, and
follows remote target refreshes. It does not add a Via: the UA core knows which transport sends.
"""

from dataclasses import dataclass, field
from enum import Enum

from .errors import LocalProtocolError, ParseError
from .fields import NameAddr
from .headers import Headers
from .message import Request, Response
from .uri import SipUri, Uri

#: Requests that refresh the remote target (RFC 3261 12.2, RFC 3311).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE"})
#: URI parameters that may not appear in a Request-URI (RFC 3261 19.1.1 table).
_NOT_IN_REQUEST_URI = ("method", "ttl", "maddr", "lr")


class DialogState(Enum):
    """Early after a 1xx with a tag; confirmed after a 2xx."""

    EARLY = "early"
    CONFIRMED = "confirmed"


DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag)."""


@dataclass(slots=True)
class Dialog:
    """One dialog's state, as RFC 3261 section 12.1 lists it."""

    call_id: str
    local_tag: str
    remote_tag: str
    #: The local party (From of our requests), without tag.
    local_uri: NameAddr
    #: The remote party (To of our requests), without tag.
    remote_uri: NameAddr
    remote_target: Uri
    #: Routes to put on our requests, in order.
    route_set: list[NameAddr] = field(default_factory=list)
    #: CSeq of the last request we sent in this dialog (0: none yet).
    local_seq: int = 0
    #: CSeq of the last request received (None: none yet).
    remote_seq: int | None = None
    state: DialogState = DialogState.EARLY
    #: True when we sent the INVITE that created it.
    is_uac: bool = True
    secure: bool = False

    @property
    def id(self) -> DialogId:
        """(Call-ID, local tag, remote tag)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    # -- creation ------------------------------------------------------------------------------

    @classmethod
    def from_response(cls, request: Request, response: Response) -> "Dialog":
        """The UAC side (RFC 3261 12.1.2), from a 1xx or 2xx with a To-tag to ``request``."""
        remote_tag = response.to.tag
        local_tag = request.from_.tag
        if not 101 <= response.status <= 299 or remote_tag is None or local_tag is None:
            raise LocalProtocolError("a dialog needs a 101-299 response with a To-tag")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_untagged(request.from_),
            remote_uri=_untagged(response.to),
            remote_target=_contact_uri(response, request.uri),
            route_set=list(reversed(response.routes("record-route"))),
            local_seq=request.cseq.seq,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            is_uac=True,
            secure=_is_sips(request.uri),
        )

    @classmethod
    def from_request(cls, request: Request, local_tag: str, early: bool = True) -> "Dialog":
        """The UAS side (RFC 3261 12.1.1), for ``request`` answered with To-tag ``local_tag``."""
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_untagged(request.to),
            remote_uri=_untagged(request.from_),
            # RFC 2543 INVITEs may lack Contact: requests then go to the From URI.
            remote_target=_contact_uri(request, request.from_.uri),
            route_set=request.routes("record-route"),
            remote_seq=request.cseq.seq,
            state=DialogState.EARLY if early else DialogState.CONFIRMED,
            is_uac=False,
            secure=_is_sips(request.uri),
        )

    # -- updates -------------------------------------------------------------------------------

    def on_response(self, request: Request, response: Response) -> None:
        """Take in a response to a request of ours in this dialog."""
        success = 200 <= response.status < 300
        if self.state is DialogState.EARLY and success and request.method == "INVITE":
            self.state = DialogState.CONFIRMED
            # The 2xx fixes the route set for good (RFC 3261 13.2.2.4).
            self.route_set = list(reversed(response.routes("record-route")))
        if (
            request.method in TARGET_REFRESH_METHODS
            and 200 <= response.status < 300
            and response.headers.get("contact")
        ) or (self.state is DialogState.EARLY and response.headers.get("contact")):
            self.remote_target = _contact_uri(response, self.remote_target)

    def on_request(self, request: Request) -> int | None:
        """Take in a request received in this dialog; a status to reject it with, or None.

        A CSeq lower than the last one received is answered 500 (RFC 3261 12.2.2). ACK and
        CANCEL carry the CSeq of the request they belong to and are not checked.
        """
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq <= self.remote_seq:
                return 500
            self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS and request.headers.get("contact"):
            try:
                self.remote_target = _contact_uri(request, self.remote_target)
            except ParseError:
                return 400
        return None

    def confirm(self) -> None:
        """The UAS sent a 2xx to the INVITE."""
        self.state = DialogState.CONFIRMED

    # -- building requests ---------------------------------------------------------------------

    def create_request(
        self,
        method: str,
        contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> Request:
        """A request in this dialog (RFC 3261 12.2.1.1), without Via.

        The local CSeq goes up by one, except for ACK and CANCEL, and when ``cseq`` is given
        (the ACK of a 2xx takes the INVITE's).
        """
        if cseq is None:
            if method in ("ACK", "CANCEL"):
                raise LocalProtocolError(f"{method} needs the CSeq of its INVITE")
            self.local_seq += 1
            cseq = self.local_seq
        request_uri, routes = self._request_uri_and_routes()
        headers = Headers()
        for route in routes:
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local_uri.with_tag(self.local_tag)))
        to = self.remote_uri.with_tag(self.remote_tag) if self.remote_tag else self.remote_uri
        headers.add("To", str(to))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        if contact is not None and method not in ("ACK", "CANCEL", "BYE"):
            headers.add("Contact", contact)
        for name, value in extra_headers or ():
            headers.add(name, value)
        request = Request(method, request_uri, headers)
        request.set_body(body, content_type if body else None)
        return request

    def create_ack(
        self, invite: Request, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """The ACK for a 2xx to ``invite`` (RFC 3261 13.2.2.4): the INVITE's CSeq number,
        this dialog's route set, and the INVITE's credentials."""
        ack = self.create_request("ACK", body=body, content_type=content_type, cseq=invite.cseq.seq)
        for name in ("authorization", "proxy-authorization"):
            for value in invite.headers.get_all(name):
                ack.headers.add(name.title(), value)
        return ack

    def _request_uri_and_routes(self) -> tuple[Uri, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if isinstance(first.uri, SipUri) and "lr" in first.uri.params:
            return self.remote_target, [str(r) for r in self.route_set]
        # Strict routing (RFC 2543 proxies): the first route becomes the Request-URI.
        request_uri = first.uri
        if isinstance(request_uri, SipUri):
            request_uri = request_uri.without_params(*_NOT_IN_REQUEST_URI)
        routes = [str(r) for r in self.route_set[1:]] + [f"<{self.remote_target}>"]
        return request_uri, routes


def dialog_id_of_request(request: Request) -> DialogId:
    """The id of the dialog an incoming request belongs to, as seen by us (the UAS of it)."""
    return (request.call_id, request.to.tag or "", request.from_.tag or "")


def dialog_id_of_response(response: Response) -> DialogId:
    """The id of the dialog a response to our request belongs to."""
    return (response.call_id, response.from_.tag or "", response.to.tag or "")


def _untagged(addr: NameAddr) -> NameAddr:
    if "tag" not in addr.params:
        return addr  # immutable: share it
    return NameAddr(addr.uri, addr.display, {k: v for k, v in addr.params.items() if k != "tag"})


def _contact_uri(message: Request | Response, default: Uri) -> Uri:
    contacts = message.contacts() if message.headers.get("contact") else []
    return contacts[0].uri if contacts else default


def _is_sips(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.scheme == "sips"
