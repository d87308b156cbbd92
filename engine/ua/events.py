"""What the UA core tells its controller: session events and session snapshots.

Both are frozen dataclasses of plain values, safe to hand to other threads, queues and Qt models.
Field names and order follow OpenSIPS 3.4's ``E_UA_SESSION`` event and ``ua_session_list``
objects (see MI-API.md), so that they serialise to the same JSON.
"""

from dataclasses import dataclass, field
from enum import IntEnum


class EventType:
    """The values of ``SessionEvent.event_type``."""

    NEW = "NEW"
    EARLY = "EARLY"
    ANSWERED = "ANSWERED"
    REJECTED = "REJECTED"
    UPDATED = "UPDATED"
    TERMINATED = "TERMINATED"


class Origin:
    """The values of ``SessionEvent.origin``."""

    REMOTE = "remote"
    LOCAL = "local"
    TIMEOUT = "timeout"


class SessionState(IntEnum):
    """OpenSIPS b2b_entities dialog states, with the same numbers."""

    UNDEFINED = 0
    NEW = 1
    NEW_AUTH = 2
    EARLY = 3
    CONFIRMED = 4
    ESTABLISHED = 5
    MODIFIED = 6
    TERMINATED = 7


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something happened in a UA session (an ``E_UA_SESSION`` event)."""

    #: The session key.
    key: str
    #: NEW, EARLY, ANSWERED, REJECTED, UPDATED or TERMINATED.
    event_type: str
    #: ``UAS`` (the session began with an INVITE received) or ``UAC``.
    entity_type: str
    #: The reply code; 0 when the event is about a request.
    status: int
    #: The reply reason; None for a request.
    reason: str | None
    #: The request's method; for a reply, the method of its CSeq.
    method: str
    #: The message body, with flag ``b`` and a non-empty body; else None.
    body: str | None
    #: With flag ``h``: every header line of the message, each ending in CRLF; else None.
    headers: str | None
    #: Engine-wide event number, rising by one per event.
    seq: int
    #: Unix time of the event.
    time: float
    #: The dialog's Call-ID.
    callid: str
    #: The From tag of the dialog's initial request.
    from_tag: str
    #: The To tag (empty until the remote or local side set one).
    to_tag: str
    #: ``remote`` (a message came in), ``local`` (a command or the engine), ``timeout``.
    origin: str

    def params(self) -> dict[str, object]:
        """The JSON-RPC ``params`` object of the notification, in OpenSIPS's field order."""
        return {
            "key": self.key,
            "event_type": self.event_type,
            "entity_type": self.entity_type,
            "status": self.status,
            "reason": self.reason,
            "method": self.method,
            "body": self.body,
            "headers": self.headers,
            "seq": self.seq,
            "time": self.time,
            "callid": self.callid,
            "from_tag": self.from_tag,
            "to_tag": self.to_tag,
            "origin": self.origin,
        }


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A snapshot of one session, as ``ua_session_list`` returns it."""

    key: str
    entity_type: str
    state: SessionState
    callid: str
    #: The From header of the initial request, as sent or received.
    from_: str
    from_uri: str
    from_tag: str
    to: str
    to_uri: str
    to_tag: str
    ruri: str
    #: CSeq numbers of the last requests sent by the caller and by the callee.
    cseq: dict[str, int]
    route_set: dict[str, list[str]]
    contact: dict[str, str]
    last_method: str
    last_reply_code: int
    created: float
    flags: str
    #: Unix time the session was answered, if it was.
    answered: float | None = None
    #: Peer transport address, ``udp:1.2.3.4:5060``.
    peer: str = ""
    #: Engine-specific extras (never in OpenSIPS's field set).
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def state_name(self) -> str:
        """The OpenSIPS name of ``state``."""
        return self.state.name

    def to_mi(self) -> dict[str, object]:
        """The ``ua_session_list`` object."""
        return {
            "key": self.key,
            "entity_type": self.entity_type,
            "state": int(self.state),
            "state_name": self.state_name,
            "callid": self.callid,
            "from": self.from_,
            "from_uri": self.from_uri,
            "from_tag": self.from_tag,
            "to": self.to,
            "to_uri": self.to_uri,
            "to_tag": self.to_tag,
            "ruri": self.ruri,
            "cseq": dict(self.cseq),
            "route_set": {k: list(v) for k, v in self.route_set.items()},
            "contact": dict(self.contact),
            "last_method": self.last_method,
            "last_reply_code": self.last_reply_code,
            "created": self.created,
            "flags": self.flags,
        }
