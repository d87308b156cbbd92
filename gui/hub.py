"""The console's copy of what the engine reports, updated in coalesced batches.

The hub reads the backend's event and message streams on the event loop (one thread: qasync
runs asyncio on Qt's loop). Items are queued as they come and applied together by a single-shot
QTimer, at most ten times a second, so a burst of thousands of events costs a few model updates
and repaints. After each batch the hub emits what changed; the table models, the details pane,
the event log and the status bar subscribe to those signals.

The event stream carries SessionEvent and RegistrationEvent items in one numbering: session
events move sessions on; registration events move the accounts' rows (``accounts``), which are
then refreshed from the backend's registrations snapshot (the embedded engine's at once and once
a second, a remote one's when its answer to ``ua_registration_list`` comes back).

Everything here is a copy of engine values (SessionEvent, RegistrationEvent, MessageRecord,
SessionInfo, RegistrationInfo), never an engine object.
"""

import asyncio
import contextlib
import difflib
import heapq
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.api import (
    EventType,
    Gap,
    MessageRecord,
    RegistrationEvent,
    RegistrationInfo,
    SessionEvent,
    SessionInfo,
)

from .backend import Backend
from .sipmsg import SipText, split_message

#: How often queued items are applied (ms): at most ~10 model updates a second.
FLUSH_INTERVAL_MS = 100
#: Messages whose Call-ID is not (yet) a known session are kept this long (s).
ORPHAN_TTL = 30.0
#: Per-session limits, so that a very long session cannot eat the memory.
MAX_EVENTS_PER_SESSION = 2000
MAX_MESSAGES_PER_SESSION = 2000


class State:
    """What the sessions table shows in its State column."""

    CALLING = "Calling"
    RINGING = "Ringing"
    INCOMING = "Incoming"
    ESTABLISHED = "Established"
    ON_HOLD = "On hold"
    HELD = "Held by peer"
    FAILED = "Failed"
    REJECTED = "Rejected"
    CANCELLED = "Cancelled"
    ENDED = "Ended"

    ALL = (
        INCOMING,
        CALLING,
        RINGING,
        ESTABLISHED,
        ON_HOLD,
        HELD,
        FAILED,
        REJECTED,
        CANCELLED,
        ENDED,
    )
    ENDED_STATES = (FAILED, REJECTED, CANCELLED, ENDED)
    LIVE = (INCOMING, CALLING, RINGING, ESTABLISHED, ON_HOLD, HELD)


class AccountState:
    """What the accounts table shows in its State column."""

    REGISTERED = "Registered"
    REGISTERING = "Registering"
    UNREGISTERING = "Unregistering"
    FAILED = "Failed"
    #: Registering again after a failure (still failing until it succeeds).
    RETRYING = "Retrying"
    UNREGISTERED = "Not registered"

    ALL = (REGISTERED, REGISTERING, UNREGISTERING, FAILED, RETRYING, UNREGISTERED)


#: RegistrationState values (RegistrationInfo.state.value) as shown.
_INFO_STATES = {
    "registered": AccountState.REGISTERED,
    "registering": AccountState.REGISTERING,
    "unregistering": AccountState.UNREGISTERING,
    "failed": AccountState.FAILED,
    "unregistered": AccountState.UNREGISTERED,
}
#: RegistrationEvent types as the state they leave the account in.
_EVENT_STATES = {
    "REGISTERED": AccountState.REGISTERED,
    "REFRESHED": AccountState.REGISTERED,
    "UNREGISTERED": AccountState.UNREGISTERED,
    "FAILED": AccountState.FAILED,
}


class AccountData:
    """The console's record of one account's registration (plain values, owned by the GUI)."""

    __slots__ = (
        "aor",
        "contact",
        "expires",
        "expires_at",
        "failures",
        "last_change",
        "last_event",
        "last_reason",
        "last_status",
        "name",
        "next_attempt",
        "public_address",
        "registrar",
        "state",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.aor = ""
        self.registrar = ""
        self.state = AccountState.UNREGISTERED
        self.contact = ""
        #: Seconds the registrar granted (0 when not registered).
        self.expires = 0
        #: Unix times: when the binding lapses, when the next REGISTER goes (refresh or retry).
        self.expires_at: float | None = None
        self.next_attempt: float | None = None
        self.last_status = 0
        self.last_reason = ""
        self.public_address = ""
        self.failures = 0
        #: The last RegistrationEvent type seen, and when (Unix time, 0: none yet).
        self.last_event = ""
        self.last_change = 0.0

    @property
    def failed(self) -> bool:
        """True from a failed attempt until one succeeds (retries included)."""
        return self.state == AccountState.FAILED or (
            self.state == AccountState.REGISTERING and self.failures > 0
        )

    @property
    def shown_state(self) -> str:
        """The state as the table shows it: Retrying for a REGISTER after failures."""
        if self.state == AccountState.REGISTERING and self.failures > 0:
            return AccountState.RETRYING
        return self.state

    @property
    def last_reply(self) -> str:
        """``401 Unauthorized``, or empty before any reply."""
        if not self.last_status:
            return self.last_reason
        return f"{self.last_status} {self.last_reason}".strip()

    def expires_in(self, now: float) -> float | None:
        """Seconds until the binding lapses, None when there is none."""
        return None if self.expires_at is None else max(0.0, self.expires_at - now)

    def retry_in(self, now: float) -> float | None:
        """Seconds until the next REGISTER, None when none is planned."""
        return None if self.next_attempt is None else max(0.0, self.next_attempt - now)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def take_info(self, info: RegistrationInfo) -> bool:
        """Copy a snapshot; True when anything shown changed."""
        before = self._values()
        self.aor = info.aor
        self.registrar = info.registrar
        self.state = _INFO_STATES.get(info.state.value, AccountState.UNREGISTERED)
        self.contact = info.contact
        self.expires = info.expires
        self.expires_at = info.expires_at
        self.next_attempt = info.next_attempt
        self.last_status = info.last_status
        self.last_reason = info.last_reason
        self.public_address = info.public_address or ""
        self.failures = info.failures
        return self._values() != before

    def apply_event(self, event: RegistrationEvent) -> None:
        """Move the row on by one registration event (a snapshot follows and corrects it)."""
        self.aor = event.aor or self.aor
        self.state = _EVENT_STATES.get(event.event_type, self.state)
        self.last_status = event.status
        self.last_reason = event.reason
        self.expires = event.expires
        self.expires_at = event.time + event.expires if event.expires else None
        if event.event_type == "FAILED":
            self.failures += 1
        elif event.event_type in ("REGISTERED", "REFRESHED"):
            self.failures = 0
        self.last_event = event.event_type
        self.last_change = event.time


@dataclass(slots=True)
class MessageItem:
    """One SIP message of a session, with what the ladder needs."""

    record: MessageRecord
    text: SipText
    #: True when the same bytes went the same way before in this session.
    retransmission: bool


@dataclass(slots=True)
class SdpEntry:
    """One SDP seen in a session, and how it differs from the previous one of the same side."""

    time: float
    #: "local" or "remote".
    side: str
    #: "offer" or "answer".
    role: str
    #: "INVITE", "200 OK (INVITE)"...
    carrier: str
    sdp: str
    #: Unified diff against the previous SDP of the same side ("" for the first one).
    diff: str


class SessionData:
    """The console's record of one session (plain values, owned by the GUI)."""

    __slots__ = (
        "_offer_pending",
        "_seen",
        "answered",
        "callid",
        "created",
        "direction",
        "ended",
        "ended_by",
        "entity_type",
        "events",
        "final_status",
        "from_",
        "info",
        "key",
        "last_event",
        "local_sdp",
        "messages",
        "remote_sdp",
        "ruri",
        "sdp",
        "state",
        "to",
    )

    def __init__(self, key: str, entity_type: str, created: float) -> None:
        self.key = key
        self.entity_type = entity_type
        #: "in" for a call received (UAS), "out" for a call placed (UAC).
        self.direction = "in" if entity_type == "UAS" else "out"
        self.created = created
        self.answered: float | None = None
        self.ended: float | None = None
        self.ended_by = ""
        self.state = State.INCOMING if entity_type == "UAS" else State.CALLING
        self.last_event = ""
        self.final_status = 0
        self.from_ = ""
        self.to = ""
        self.ruri = ""
        self.callid = ""
        self.info: SessionInfo | None = None
        self.events: list[SessionEvent] = []
        self.messages: list[MessageItem] = []
        self.sdp: list[SdpEntry] = []
        #: The SDP of each side in force (after the last completed offer/answer).
        self.local_sdp = ""
        self.remote_sdp = ""
        self._offer_pending: tuple[str, str] | None = None  # (side, sdp)
        self._seen: set[tuple[str, int]] = set()

    # -- derived values -------------------------------------------------------------------------

    @property
    def is_ended(self) -> bool:
        """True once the session is over."""
        return self.ended is not None

    def duration(self, now: float) -> float:
        """Seconds since answer (or since creation while unanswered), frozen at the end."""
        start = self.answered if self.answered is not None else self.created
        end = self.ended if self.ended is not None else now
        return max(0.0, end - start)

    @property
    def remote_offer(self) -> str | None:
        """The SDP offer received and not yet answered, or the initial INVITE's, else None."""
        if self._offer_pending and self._offer_pending[0] == "remote":
            return self._offer_pending[1]
        for entry in self.sdp:
            if entry.side == "remote" and entry.role == "offer":
                return entry.sdp
        return None

    @property
    def last_local_sdp(self) -> str:
        """The last SDP we sent (offer or answer), or empty."""
        for entry in reversed(self.sdp):
            if entry.side == "local":
                return entry.sdp
        return self.local_sdp

    def last_message(self) -> MessageItem | None:
        """The newest message of the session."""
        return self.messages[-1] if self.messages else None

    # -- updates ---------------------------------------------------------------------------------

    def take_info(self, info: SessionInfo) -> None:
        """Copy what the table shows from a snapshot."""
        self.info = info
        self.from_ = info.from_ or self.from_
        self.to = info.to or self.to
        self.ruri = info.ruri or self.ruri
        self.callid = info.callid or self.callid
        if info.answered is not None and self.answered is None and not self.is_ended:
            self.answered = info.answered
            self.state = State.ESTABLISHED

    def apply_event(self, event: SessionEvent) -> None:
        """Move the session on by one engine event."""
        if len(self.events) < MAX_EVENTS_PER_SESSION:
            self.events.append(event)
        self.callid = self.callid or event.callid
        status = f" {event.status}" if event.status else ""
        self.last_event = f"{event.event_type} {event.method}{status}"
        kind = event.event_type
        if kind == EventType.NEW:
            if self.answered is None and not self.is_ended:
                self.state = State.INCOMING
        elif kind == EventType.EARLY:
            if self.answered is None and self.entity_type == "UAC" and not self.is_ended:
                self.state = State.RINGING
                self.final_status = event.status
        elif kind == EventType.ANSWERED:
            if event.method == "INVITE" and self.answered is None:
                self.answered = event.time
                self.final_status = event.status
                self.state = State.ESTABLISHED
        elif kind == EventType.REJECTED:
            if event.method == "INVITE" and self.answered is None:
                self.final_status = event.status
                self.state = State.FAILED
        elif kind == EventType.TERMINATED:
            self.ended = event.time
            self.ended_by = event.origin
            if self.state not in (State.FAILED, State.REJECTED):
                self.state = State.ENDED if self.answered is not None else State.CANCELLED

    def add_message(self, record: MessageRecord, text: SipText) -> None:
        """Keep one message; note answers and SDP it carries."""
        fingerprint = (record.direction, hash(record.data))
        retransmission = fingerprint in self._seen
        self._seen.add(fingerprint)
        if len(self.messages) < MAX_MESSAGES_PER_SESSION:
            self.messages.append(MessageItem(record, text, retransmission))
        if retransmission:
            return
        outgoing = record.direction == "out"
        if not text.is_request and text.cseq_method == "INVITE" and not self.is_ended:
            self._invite_reply(text, outgoing, record.time)
        if text.has_sdp:
            self._sdp(record, text)
            self._hold_state()

    def _invite_reply(self, text: SipText, outgoing: bool, when: float) -> None:
        status = text.status
        if status < 200:
            return
        if self.answered is not None:
            if not self.final_status and (self.entity_type == "UAS") == outgoing:
                self.final_status = status  # answered before we saw the 200 (a snapshot)
            return
        if self.entity_type == "UAS" and outgoing:
            self.final_status = status
            if status < 300:
                self.answered = when
                self.state = State.ESTABLISHED
            else:
                self.state = State.REJECTED
        elif self.entity_type == "UAC" and not outgoing and status < 300:
            self.answered = when
            self.final_status = status
            self.state = State.ESTABLISHED

    def _sdp(self, record: MessageRecord, text: SipText) -> None:
        side = "local" if record.direction == "out" else "remote"
        body = text.body.replace("\r\n", "\n")
        method = text.method
        if text.is_request and method not in ("ACK", "PRACK") and self._offer_pending is None:
            role = "offer"
        elif text.is_request and method not in ("ACK", "PRACK"):
            role = "offer" if self._offer_pending[0] == side else "answer"  # type: ignore[index]
        elif self._offer_pending is not None and self._offer_pending[0] != side:
            role = "answer"
        else:
            role = "offer"  # a late offer in a 2xx
        carrier = text.method if text.is_request else f"{text.status} {text.reason}".strip()
        if not text.is_request and text.cseq_method:
            carrier += f" ({text.cseq_method})"
        previous = next((e.sdp for e in reversed(self.sdp) if e.side == side), "")
        diff = ""
        if previous:
            diff = "".join(
                difflib.unified_diff(
                    previous.splitlines(True),
                    body.splitlines(True),
                    f"previous {side} SDP",
                    f"{side} {role} ({carrier})",
                    n=1,
                )
            )
        self.sdp.append(SdpEntry(record.time, side, role, carrier, body, diff))
        if role == "offer":
            self._offer_pending = (side, body)
        else:
            offer_side, offer = self._offer_pending  # type: ignore[misc]
            if offer_side == "local":
                self.local_sdp, self.remote_sdp = offer, body
            else:
                self.local_sdp, self.remote_sdp = body, offer
            self._offer_pending = None

    def _hold_state(self) -> None:
        if self.is_ended or self.answered is None:
            return
        local, remote = media_direction(self.local_sdp), media_direction(self.remote_sdp)
        if local in ("sendonly", "inactive"):
            self.state = State.ON_HOLD
        elif remote in ("sendonly", "inactive"):
            self.state = State.HELD
        else:
            self.state = State.ESTABLISHED


def media_direction(sdp: str) -> str:
    """The direction of the first live audio stream (or of the session), sendrecv by default."""
    session_level = "sendrecv"
    media_level: str | None = None
    in_audio = False
    seen_media = False
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            if seen_media and in_audio:
                break
            parts = line[2:].split()
            in_audio = len(parts) > 1 and parts[0] == "audio" and parts[1] != "0"
            seen_media = True
            continue
        if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            if not seen_media:
                session_level = line[2:]
            elif in_audio:
                media_level = line[2:]
    return media_level or session_level


class SessionHub(QObject):
    """Every session the console knows, fed by the backend's streams in coalesced batches."""

    #: New session keys, in the order they appeared.
    sessionsAdded = Signal(list)
    #: Keys of sessions that changed in the last batch.
    sessionsChanged = Signal(list)
    #: Keys of ended sessions dropped after the retention time.
    sessionsRemoved = Signal(list)
    #: The SessionEvent items of the last batch, in order.
    eventsAppended = Signal(list)
    #: Keys of incoming calls that wait for the operator.
    incomingCalls = Signal(list)
    #: Counters changed: active sessions, calls per second, items lost.
    statsChanged = Signal()
    #: The backend (re)started; the status bar and banners look at it.
    backendChanged = Signal()
    #: The table was resynchronised with the engine's session list (events missed since last).
    resynced = Signal(int)
    #: Accounts (names) that appeared, changed, went away.
    accountsAdded = Signal(list)
    accountsChanged = Signal(list)
    accountsRemoved = Signal(list)
    #: Accounts (names) whose registration just failed (they were not failed before).
    registrationsFailed = Signal(list)
    #: The RegistrationEvent items of the last batch, in order.
    registrationEvents = Signal(list)

    def __init__(self, parent: QObject | None = None, *, keep_ended: float = 300.0) -> None:
        super().__init__(parent)
        self.backend: Backend | None = None
        self.sessions: dict[str, SessionData] = {}
        #: Every account of the engine, in its order.
        self.accounts: dict[str, AccountData] = {}
        #: Accounts whose failure was announced (again only once they have recovered).
        self._failure_said: set[str] = set()
        #: How long ended sessions stay in the table (s); then they go to history.
        self.keep_ended = keep_ended
        self.events_lost = 0
        self.messages_lost = 0
        self.flushes = 0
        self._lost_at_resync = 0
        self._by_callid: dict[str, str] = {}
        self._event_batch: list[SessionEvent | Gap] = []
        self._message_batch: list[MessageRecord | Gap] = []
        self._orphans: dict[str, list[tuple[float, MessageRecord, SipText]]] = {}
        self._ended_order: deque[tuple[float, str]] = deque()
        self._created_times: deque[float] = deque()
        self._active = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._readers: list[asyncio.Task[Any]] = []
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self.flush)
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._housekeeping)
        self._tick.start()

    # -- life cycle ------------------------------------------------------------------------------

    def attach(self, backend: Backend) -> None:
        """Read this backend's streams (after ``backend.start()``)."""
        self.detach()
        self.backend = backend
        if hasattr(backend, "on_resync"):
            backend.on_resync = self.resync  # type: ignore[attr-defined]
        if hasattr(backend, "on_registrations"):
            backend.on_registrations = self.take_registrations  # type: ignore[attr-defined]
        self.take_registrations(backend.registrations())
        events = backend.events()
        if events is not None:
            self._readers.append(asyncio.ensure_future(self._read(events, self._event_batch)))
        messages = backend.messages()
        if messages is not None:
            self._readers.append(asyncio.ensure_future(self._read(messages, self._message_batch)))
        self.backendChanged.emit()

    def detach(self) -> None:
        """Stop reading the current backend."""
        for task in self._readers:
            task.cancel()
        self._readers.clear()
        self.backend = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a coroutine on the loop, keeping a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _read(self, reader: Any, batch: list[Any]) -> None:
        with contextlib.suppress(StopAsyncIteration, asyncio.CancelledError):
            while True:
                batch.append(await reader.get())
                while (item := reader.get_nowait()) is not None:
                    batch.append(item)
                if not self._flush_timer.isActive():
                    self._flush_timer.start()

    # -- what forms tell the hub -----------------------------------------------------------------

    def note_outgoing(self, key: str, ruri: str, from_: str, to: str) -> SessionData:
        """A call the console just placed (the events about it come later)."""
        s = self.sessions.get(key)
        if s is None:
            s = self._new_session(key, "UAC", time.time())
            s.ruri, s.from_, s.to, s.callid = ruri, from_, to, key
            self._by_callid[key] = key
            self.sessionsAdded.emit([key])
            self.statsChanged.emit()
        return s

    # -- batches ---------------------------------------------------------------------------------

    def flush(self) -> None:
        """Apply every queued event and message; emit what changed."""
        self.flushes += 1
        events, self._event_batch[:] = list(self._event_batch), []
        records, self._message_batch[:] = list(self._message_batch), []
        added: list[str] = []
        changed: dict[str, None] = {}
        ring: list[str] = []
        fresh: list[SessionEvent] = []
        registrations: list[RegistrationEvent] = []
        for item in events:
            if isinstance(item, Gap):
                self.events_lost += item.lost
            elif isinstance(item, RegistrationEvent):
                registrations.append(item)
            elif isinstance(item, SessionEvent):
                fresh.append(item)
        messages: list[MessageRecord] = []
        for record in records:
            if isinstance(record, Gap):
                self.messages_lost += record.lost
            else:
                messages.append(record)
        now = time.time()
        # Both streams are in time order; applying them merged keeps cause before effect
        # (the 486 we sent before the TERMINATED that its ACK brought).
        for item in heapq.merge(fresh, messages, key=lambda x: x.time):
            if isinstance(item, SessionEvent):
                self._apply_event(item, added, changed, ring)
            else:
                self._apply_message(item, now, changed)
        backend = self.backend
        if backend is not None:
            for key in changed:
                s = self.sessions[key]
                if s.is_ended:
                    continue
                info = backend.session_info(key)
                if info is not None:
                    s.take_info(info)
        if added:
            self.sessionsAdded.emit(added)
        if changed:
            self.sessionsChanged.emit(list(changed))
        if fresh:
            self.eventsAppended.emit(fresh)
        waiting = [k for k in ring if self.sessions[k].state == State.INCOMING]
        if waiting:
            self.incomingCalls.emit(waiting)
        if registrations:
            self._apply_registrations(registrations)
        if added or changed or events or records:
            self.statsChanged.emit()

    def _apply_event(
        self, item: SessionEvent, added: list[str], changed: dict[str, None], ring: list[str]
    ) -> None:
        s = self.sessions.get(item.key)
        if s is None:
            s = self._new_session(item.key, item.entity_type, item.time)
            added.append(item.key)
        if item.callid and item.callid not in self._by_callid:
            self._by_callid[item.callid] = item.key
            for _, record, text in self._orphans.pop(item.callid, None) or ():
                s.add_message(record, text)
        was_ended = s.is_ended
        s.apply_event(item)
        if s.is_ended and not was_ended:
            self._session_ended(s)
        if item.event_type == EventType.NEW:
            ring.append(item.key)
        changed[item.key] = None

    def _apply_message(self, record: MessageRecord, now: float, changed: dict[str, None]) -> None:
        text = split_message(record.data)
        key = self._by_callid.get(text.call_id)
        if key is None and text.call_id in self.sessions:
            key = text.call_id
        s = self.sessions.get(key) if key is not None else None
        if s is None:
            self._orphans.setdefault(text.call_id, []).append((now, record, text))
            return
        was_ended = s.is_ended
        s.add_message(record, text)
        if s.is_ended and not was_ended:
            self._session_ended(s)
        changed[s.key] = None

    def _new_session(self, key: str, entity_type: str, created: float) -> SessionData:
        s = SessionData(key, entity_type, created)
        self.sessions[key] = s
        self._created_times.append(created)
        self._active += 1
        backend = self.backend
        info = backend.session_info(key) if backend is not None else None
        if info is not None:
            s.take_info(info)
            s.created = info.created or created
        return s

    def _session_ended(self, s: SessionData) -> None:
        self._active -= 1
        self._ended_order.append((s.ended or time.time(), s.key))

    # -- accounts --------------------------------------------------------------------------------

    def _apply_registrations(self, events: list[RegistrationEvent]) -> None:
        changed: dict[str, None] = {}
        for event in events:
            account = self.accounts.get(event.account)
            if account is None:  # the snapshot below brings it in
                continue
            account.apply_event(event)
            changed[account.name] = None
        if changed:
            self.accountsChanged.emit(list(changed))
        self.registrationEvents.emit(events)
        self._announce_failures(list(changed))
        self.refresh_registrations()

    def _announce_failures(self, names: list[str]) -> None:
        """registrationsFailed for accounts that failed and were not said to since they last
        registered (a registrar that stays down is announced once, not at every retry)."""
        failed = []
        for name in names:
            account = self.accounts.get(name)
            if account is None:
                continue
            if account.failed and name not in self._failure_said:
                self._failure_said.add(name)
                failed.append(name)
            elif not account.failed and account.state != AccountState.REGISTERING:
                self._failure_said.discard(name)
        if failed:
            self.registrationsFailed.emit(failed)

    def refresh_registrations(self) -> None:
        """Bring the accounts up to date with the engine (a remote one answers later)."""
        backend = self.backend
        if backend is None:
            return
        refresh = getattr(backend, "refresh_registrations", None)
        if refresh is not None:
            refresh()  # its answer comes back through take_registrations
        else:
            self.take_registrations(backend.registrations())

    def take_registrations(self, infos: list[RegistrationInfo]) -> None:
        """Make the accounts agree with a registrations snapshot."""
        names = {info.account for info in infos}
        removed = [name for name in self.accounts if name not in names]
        for name in removed:
            del self.accounts[name]
            self._failure_said.discard(name)
        added: list[str] = []
        changed: list[str] = []
        for info in infos:
            account = self.accounts.get(info.account)
            if account is None:
                account = self.accounts[info.account] = AccountData(info.account)
                account.take_info(info)
                added.append(info.account)
            elif account.take_info(info):
                changed.append(info.account)
        if removed:
            self.accountsRemoved.emit(removed)
        if added:
            self.accountsAdded.emit(added)
        if changed:
            self.accountsChanged.emit(changed)
        self._announce_failures(changed)
        if removed or added or changed:
            self.statsChanged.emit()

    def account_counts(self) -> dict[str, int]:
        """How many accounts show each AccountState (only states that have some)."""
        counts: dict[str, int] = {}
        for account in self.accounts.values():
            counts[account.shown_state] = counts.get(account.shown_state, 0) + 1
        return counts

    # -- resynchronisation (remote engines) --------------------------------------------------------

    def resync(self, infos: list[SessionInfo]) -> None:
        """Make the table agree with ``ua_session_list``: add sessions we never heard of, end
        those the server no longer has (their TERMINATED was missed), refresh the rest."""
        live = {info.key: info for info in infos}
        added: list[str] = []
        changed: list[str] = []
        now = time.time()
        for key, info in live.items():
            s = self.sessions.get(key)
            if s is None:
                s = self._new_session(key, info.entity_type, info.created or now)
                s.take_info(info)
                added.append(key)
            else:
                s.take_info(info)
                changed.append(key)
        for key, s in list(self.sessions.items()):
            if key not in live and not s.is_ended and now - s.created > 2.0:
                s.ended = now
                s.ended_by = "resync"
                s.state = State.ENDED if s.answered is not None else State.CANCELLED
                s.last_event = "ended (seen at resync)"
                self._session_ended(s)
                changed.append(key)
        missed = self.events_lost - self._lost_at_resync
        self._lost_at_resync = self.events_lost
        if added:
            self.sessionsAdded.emit(added)
        if changed:
            self.sessionsChanged.emit(changed)
        self.resynced.emit(missed)
        self.statsChanged.emit()

    # -- housekeeping ----------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.time()
        horizon = now - self.keep_ended
        gone: list[str] = []
        while self._ended_order and self._ended_order[0][0] <= horizon:
            _, key = self._ended_order.popleft()
            s = self.sessions.pop(key, None)
            if s is not None:
                gone.append(key)
                if self._by_callid.get(s.callid) == key:
                    del self._by_callid[s.callid]
        if gone:
            self.sessionsRemoved.emit(gone)
        stale = now - ORPHAN_TTL
        for callid in [c for c, items in self._orphans.items() if items[-1][0] < stale]:
            del self._orphans[callid]
        while self._created_times and self._created_times[0] < now - 5:
            self._created_times.popleft()
        backend = self.backend
        if backend is not None and not hasattr(backend, "refresh_registrations"):
            self.take_registrations(backend.registrations())  # the embedded engine: cheap
        self.statsChanged.emit()

    # -- counters --------------------------------------------------------------------------------

    @property
    def active_count(self) -> int:
        """Sessions not yet ended."""
        return self._active

    def calls_per_second(self) -> float:
        """New sessions per second over the last five seconds."""
        now = time.time()
        recent = sum(1 for t in self._created_times if t >= now - 5)
        return recent / 5.0

    def incoming_waiting(self) -> list[str]:
        """Keys of incoming calls still waiting for the operator, oldest first."""
        return [k for k, s in self.sessions.items() if s.state == State.INCOMING]
