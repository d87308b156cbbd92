"""Building and trimming the messages of UA sessions: helpers both halves of the core share."""

from engine.sip import Headers, Request, Response, SipUri, Target
from engine.sip.headers import header_key

from .errors import request_failed


def via_value(local: Target, branch: str | None = None) -> str:
    """A Via value for a request sent from ``local`` (the transaction layer adds a branch)."""
    branch_param = f";branch={branch}" if branch else ""
    return f"SIP/2.0/{local.transport.upper()} {hostport(local)}{branch_param};rport"


def hostport(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}"


def as_sip_uri(uri: object) -> SipUri:
    if not isinstance(uri, SipUri):
        raise request_failed(f"cannot send to {uri}: not a SIP URI")
    return uri


def encoded_body(body: str | None, content_type: str | None) -> tuple[bytes, str | None]:
    """A body given to a command, and its media type (application/sdp unless told)."""
    if not body:
        return b"", None
    media = (content_type or "application/sdp").strip()
    if media.lower().startswith("content-type:"):
        media = media.split(":", 1)[1].strip()
    return body.encode("utf-8"), media


def set_body(message: Request, body: str | None, content_type: str | None) -> None:
    message.set_body(*encoded_body(body, content_type))


def invite_from_response(response: Response) -> Request:
    """The INVITE a 2xx answers, as far as a dialog needs it (From, To, Call-ID, CSeq)."""
    headers = Headers()
    for name in ("from", "to", "call-id"):
        headers.add(name.title(), response.headers.get(name) or "")
    headers.add("CSeq", f"{response.cseq.seq} INVITE")
    contact = response.contacts()[0].uri if response.headers.get("contact") else response.to.uri
    return Request("INVITE", contact, headers)


#: What a session still needs of its initial INVITE once the call is up (ua_session_list).
#: Their names are written in one spelling, shared by every session (not the received strings).
_KEPT_OF_INVITE = {"from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


def slim_invite(invite: Request) -> Request:
    """The initial INVITE reduced to what a live session shows of it: the INVITE and its
    parsed headers are a third of a session's memory, and nothing else reads them any more."""
    kept = []
    for name, value in invite.headers:
        spelling = _KEPT_OF_INVITE.get(header_key(name))
        if spelling is not None:
            kept.append((spelling, value))
    return Request(invite.method, invite.uri_text, Headers(kept, checked=True))
