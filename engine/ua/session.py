"""One UA session's state, as the core keeps it (never handed out: see SessionInfo)."""

from dataclasses import dataclass, field

from engine.sip import Request, SipUri, Target
from engine.sip.dialog import Dialog, DialogState

from .events import SessionInfo, SessionState
from .flags import SessionFlags

UAS = "UAS"
UAC = "UAC"


def slot_of(method: str) -> str:
    """The pending-request slot a method uses: PRACK, UPDATE, or INVITE (for every other)."""
    return method if method in ("PRACK", "UPDATE") else "INVITE"


@dataclass(slots=True)
class Pending:
    """An incoming request waiting for the controller's reply."""

    txn: str
    request: Request
    source: Target


@dataclass(slots=True)
class Outstanding:
    """A request of ours waiting for its final response."""

    txn: str
    request: Request
    #: ``user`` (reported to the controller), or what the engine sent it for: ``prack``,
    #: ``bye`` (terminate), ``limit``.
    purpose: str
    #: Digest answers already made for this request (one per challenge).
    auth_attempts: int = 0


@dataclass(slots=True)
class Retransmit:
    """A message the UA core (not a transaction) resends: a 2xx until ACK, a reliable 1xx
    until PRACK (RFC 3261 13.3.1.4, RFC 3262)."""

    data: bytes
    target: Target
    next_at: float
    interval: float
    give_up_at: float
    #: For a 2xx: its CSeq number (the ACK's). For a reliable 1xx: its RSeq.
    number: int


@dataclass(slots=True)
class Session:
    """Everything the core knows about one UA session."""

    key: str
    entity_type: str
    flags: SessionFlags
    created: float
    local: Target
    call_id: str
    local_tag: str
    #: The initial INVITE (received, or the latest one sent, with credentials).
    invite: Request
    #: The Contact we put in our requests and answers.
    local_contact: str = ""
    state: SessionState = SessionState.NEW
    remote_tag: str = ""
    proxy: SipUri | None = None
    #: The account the call was placed from or came in for.
    account: str | None = None
    #: The dialog once confirmed (or the UAS's early dialog).
    dialog: Dialog | None = None
    #: UAC: one early dialog per remote To-tag (forking).
    early: dict[str, Dialog] = field(default_factory=dict)
    #: UAS: the initial INVITE's server transaction and source.
    invite_txn: str = ""
    source: Target | None = None
    #: Server transactions of this session (initial INVITE, in-dialog requests).
    server_txns: list[str] = field(default_factory=list)
    pending_in: dict[str, Pending] = field(default_factory=dict)
    outstanding: dict[str, Outstanding] = field(default_factory=dict)
    last_reply: dict[str, int] = field(default_factory=dict)
    last_method: str = "INVITE"
    last_reply_code: int = 0
    answered: float | None = None
    #: UAS: the 2xx being retransmitted until its ACK.
    pending_2xx: Retransmit | None = None
    #: UAS: a reliable provisional response being retransmitted until its PRACK.
    pending_1xx: Retransmit | None = None
    rseq: int = 0
    #: UAS: the incoming INVITE asked for reliable provisional responses.
    peer_requires_100rel: bool = False
    #: UAC: the ACK sent per remote tag, resent on retransmitted 2xx.
    acks: dict[str, tuple[bytes, Target]] = field(default_factory=dict)
    #: UAC with flag d: the INVITE whose 2xx the controller must ACK.
    unacked_invite: Request | None = None
    #: UAC: the highest RSeq PRACKed per remote tag.
    pracked: dict[str, int] = field(default_factory=dict)
    #: UAS: the initial INVITE was rejected; the session ends when its ACK comes.
    rejected: bool = False
    #: Ended for the controller (TERMINATED sent); kept only to finish a BYE after an ACK.
    ended: bool = False
    bye_on_ack: bool = False
    deadline: float | None = None

    @property
    def confirmed(self) -> bool:
        """True once the dialog is confirmed (a 2xx was sent or received)."""
        return self.dialog is not None and self.dialog.state is DialogState.CONFIRMED

    def info(self) -> SessionInfo:
        """A snapshot for ``ua_session_list``."""
        invite = self.invite
        dialog = self.dialog
        caller_seq = invite.cseq.seq
        callee_seq = 0
        if dialog is not None:
            if dialog.is_uac:
                caller_seq = max(caller_seq, dialog.local_seq)
                callee_seq = dialog.remote_seq or 0
            else:
                caller_seq = max(caller_seq, dialog.remote_seq or 0)
                callee_seq = dialog.local_seq
        routes = [str(r) for r in dialog.route_set] if dialog is not None else []
        remote_contact = str(dialog.remote_target) if dialog is not None else ""
        if self.entity_type == UAC:
            contact = {"caller": self.local_contact, "callee": remote_contact}
        else:
            contact = {"caller": remote_contact, "callee": self.local_contact}
        from_tag = self.local_tag if self.entity_type == UAC else self.remote_tag
        to_tag = self.remote_tag if self.entity_type == UAC else self.local_tag
        return SessionInfo(
            key=self.key,
            entity_type=self.entity_type,
            state=self.state,
            callid=self.call_id,
            from_=invite.headers.get("from") or "",
            from_uri=str(invite.from_.uri),
            from_tag=from_tag,
            to=invite.headers.get("to") or "",
            to_uri=str(invite.to.uri),
            to_tag=to_tag,
            ruri=invite.uri_text,
            cseq={"caller": caller_seq, "callee": callee_seq},
            route_set={"caller": routes, "callee": list(reversed(routes))},
            contact=contact,
            last_method=self.last_method,
            last_reply_code=self.last_reply_code,
            created=self.created,
            flags=self.flags.text,
            answered=self.answered,
            peer=str(self.source) if self.source is not None else "",
        )
