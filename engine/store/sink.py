"""The writer's thread side: turns a batch of events and messages into rows, in one transaction.

Everything here runs in the writer's one worker thread (``EventLog`` hands it batches); nothing
here touches asyncio. Session rows are built from two sources: the events (state, who ended the
call) and the messages (From, To and Request-URI of the initial INVITE, its final reply, which for
a call we answer is not an event).
"""

import contextlib
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from engine.api import RegistrationEvent
from engine.api.engine import MessageRecord
from engine.ua.events import EventType, SessionEvent

from .retention import Retention, prune
from .schema import StoreError, connect, describe_error
from .sipmsg import Summary, summarise

#: How far each state is along; a session never goes back to an earlier one.
_RANK = {
    EventType.NEW: 0,
    EventType.EARLY: 1,
    EventType.ANSWERED: 2,
    EventType.REJECTED: 2,
    EventType.TERMINATED: 3,
}
#: Sessions and Call-IDs remembered for messages that come late (retransmissions, ACKs).
_REMEMBER = 100_000
#: Seconds an ended session stays in memory for such messages.
_LINGER = 64.0

SESSION_COLUMNS = (
    "key", "callid", "entity_type", "direction", "from_party", "to_party", "ruri", "from_tag",
    "to_tag", "state", "created", "answered", "ended", "final_status", "final_reason",
    "ended_by", "transport", "local", "remote",
)  # fmt: skip
EVENT_COLUMNS = (
    "seq", "key", "event_type", "entity_type", "status", "reason", "method", "body", "headers",
    "time", "callid", "from_tag", "to_tag", "origin",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "time", "direction", "transport", "local", "remote", "first_line", "callid", "cseq",
    "session_key", "data",
)  # fmt: skip


#: Bound values per statement, under SQLite's default limit of 32766.
_MAX_VALUES = 30000
_UPSERT_TAIL = " ON CONFLICT([key]) DO UPDATE SET " + ", ".join(
    f"[{c}] = excluded.[{c}]" for c in SESSION_COLUMNS[1:]
)
_GAP_COLUMNS = ("time", "stream", "lost", "reason")
_REGISTRATION_COLUMNS = (
    "seq", "time", "account", "event_type", "status", "reason", "expires", "aor", "origin",
)  # fmt: skip


def _insert_many(
    conn: sqlite3.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[object, ...]],
    tail: str = "",
) -> None:
    """Insert ``rows`` with as few statements as SQLite's limits allow.

    One statement of many rows, rather than ``executemany``: the sqlite3 module lets go of the
    GIL for each step of a statement and must take it back after; one step per few thousand
    rows, instead of one per row, spares the engine's thread that many hand-overs (each can cost
    it up to the interpreter's switch interval when both threads are busy)."""
    names = ", ".join(f"[{c}]" for c in columns)
    one = "(" + ", ".join("?" * len(columns)) + ")"
    per_statement = max(1, _MAX_VALUES // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))}{tail}"
        conn.execute(sql, [value for row in chunk for value in row])


@dataclass(slots=True)
class Batch:
    """What the writer drained from the engine's streams in one interval."""

    events: list[SessionEvent] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)
    #: (time, stream, lost, reason) for each loss.
    gaps: list[tuple[float, str, int, str]] = field(default_factory=list)
    registrations: list[RegistrationEvent] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.events) + len(self.messages) + len(self.registrations)

    @property
    def oldest(self) -> float | None:
        """The time of the oldest item, if any."""
        times = [x.time for x in self.events[:1] + self.messages[:1]]  # type: ignore[operator]
        return min(times) if times else None


@dataclass(slots=True)
class _Session:
    key: str
    callid: str
    entity_type: str
    direction: str
    from_party: str | None = None
    to_party: str | None = None
    ruri: str | None = None
    from_tag: str | None = None
    to_tag: str | None = None
    state: str = EventType.NEW
    created: float | None = None
    answered: float | None = None
    ended: float | None = None
    final_status: int | None = None
    final_reason: str | None = None
    ended_by: str | None = None
    transport: str | None = None
    local: str | None = None
    remote: str | None = None
    #: The CSeq number of the initial INVITE, to tell its replies from a re-INVITE's.
    invite_cseq: str | None = None

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, c) for c in SESSION_COLUMNS)

    def advance(self, state: str) -> None:
        if _RANK[state] >= _RANK.get(self.state, 0):
            self.state = state

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "_Session":
        s = cls(row["key"], row["callid"], row["entity_type"], row["direction"])
        for name in SESSION_COLUMNS[4:]:
            setattr(s, name, row[name])
        return s


@dataclass(frozen=True, slots=True)
class _Invite:
    """An initial INVITE seen before its session's first event."""

    time: float
    summary: Summary
    message: MessageRecord


def _tag(header: str) -> str:
    rest = header.rsplit(">", 1)[-1] if "<" in header else header
    for param in rest.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "tag":
            return value.strip()
    return ""


class Sink:
    """The event log file, written by one thread."""

    def __init__(
        self,
        path: Path | str,
        *,
        retention: Retention | None = None,
        busy_timeout: float = 2.0,
        pragmas: dict[str, object] | None = None,
    ) -> None:
        self.path = Path(path)
        self.retention = retention or Retention()
        self.busy_timeout = busy_timeout
        #: Extra PRAGMAs set after opening (tests use ``max_page_count`` to fill the "disk").
        self.pragmas = dict(pragmas or {})
        self.db: Database | None = None
        self._live: dict[str, _Session] = {}
        self._ended: OrderedDict[str, float] = OrderedDict()
        #: Call-ID -> {entity_type: session key}.
        self._callids: OrderedDict[str, dict[str, str]] = OrderedDict()
        #: (Call-ID, entity_type) -> the initial INVITE, until the session's first event.
        self._invites: OrderedDict[tuple[str, str], _Invite] = OrderedDict()
        self._last_prune = 0.0

    # -- life cycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Open (create, upgrade) the file. StoreError with a one-line message if it cannot."""
        self.db = connect(self.path, busy_timeout=self.busy_timeout)
        self.db.conn.row_factory = sqlite3.Row
        try:
            for name, value in self.pragmas.items():
                self.db.execute(f"PRAGMA {name}={value}")
        except sqlite3.Error as error:
            raise StoreError(describe_error(self.path, error)) from error
        self._last_prune = time.monotonic()

    def close(self) -> None:
        """Checkpoint the WAL and close the file (errors ignored: the rows are committed)."""
        if self.db is None:
            return
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        self.db = None

    # -- writing ---------------------------------------------------------------------------------

    def write(self, batch: Batch) -> int:
        """Write ``batch`` in one transaction; events and messages written. StoreError if not."""
        db = self.db
        if db is None:
            raise StoreError(f"cannot use event log {self.path}: it is not open")
        try:
            with db.atomic():
                self._write(db, batch)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(describe_error(self.path, error)) from error
        self._forget_old(time.time())
        return len(batch)

    def maybe_prune(self) -> int:
        """Apply retention if it is due; rows deleted. StoreError if the file fails."""
        if self.db is None or time.monotonic() - self._last_prune < self.retention.every:
            return 0
        self._last_prune = time.monotonic()
        try:
            return prune(self.db, self.retention)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(describe_error(self.path, error)) from error

    def _write(self, db: Database, batch: Batch) -> None:
        conn = db.conn
        if batch.gaps:
            _insert_many(conn, "gaps", _GAP_COLUMNS, batch.gaps)  # type: ignore[arg-type]
        if batch.registrations:
            rows = [
                (r.seq, r.time, r.account, r.event_type, r.status, r.reason, r.expires, r.aor,
                 r.origin)
                for r in batch.registrations
            ]  # fmt: skip
            _insert_many(conn, "registrations", _REGISTRATION_COLUMNS, rows)
        dirty: dict[str, _Session] = {}
        fixups: list[tuple[str, str]] = []
        for event in batch.events:
            s = self._session_for_event(event, dirty, fixups)
            self._apply_event(s, event)
            dirty[s.key] = s
        if batch.events:
            _insert_many(
                conn,
                "events",
                EVENT_COLUMNS,
                [
                    (
                        e.seq, e.key, e.event_type, e.entity_type, e.status, e.reason, e.method,
                        e.body, e.headers, e.time, e.callid, e.from_tag, e.to_tag, e.origin,
                    )
                    for e in batch.events
                ],
            )  # fmt: skip
        rows = []
        for m in batch.messages:
            summary = summarise(m.data)
            key = self._apply_message(m, summary, dirty)
            rows.append(
                (
                    m.time, m.direction, m.transport, m.local, m.remote, summary.first_line,
                    summary.callid, summary.cseq, key, m.data,
                )
            )  # fmt: skip
        if rows:
            _insert_many(conn, "messages", MESSAGE_COLUMNS, rows)
        if dirty:
            rows = [s.row() for s in dirty.values()]
            _insert_many(conn, "sessions", SESSION_COLUMNS, rows, _UPSERT_TAIL)
        for key, callid in fixups:
            conn.execute(
                "UPDATE messages SET session_key = ? WHERE callid = ? AND session_key IS NULL",
                [key, callid],
            )

    # -- sessions --------------------------------------------------------------------------------

    def _session_for_event(
        self, event: SessionEvent, dirty: dict[str, _Session], fixups: list[tuple[str, str]]
    ) -> _Session:
        s = dirty.get(event.key) or self._live.get(event.key)
        if s is None and event.event_type != EventType.NEW:  # NEW: a session not yet written
            s = self._load(event.key)
        if s is None:
            s = _Session(
                event.key,
                event.callid,
                event.entity_type,
                "in" if event.entity_type == "UAS" else "out",
                created=event.time,
            )
            invite = self._invites.pop((event.callid, event.entity_type), None)
            if invite is not None:
                self._apply_invite(s, invite.summary, invite.message)
                fixups.append((s.key, s.callid))
        self._live[s.key] = s
        keys = self._callids.setdefault(s.callid, {})
        keys[s.entity_type] = s.key
        self._callids.move_to_end(s.callid)
        while len(self._callids) > _REMEMBER:
            self._callids.popitem(last=False)
        return s

    def _load(self, key: str) -> _Session | None:
        """A session written earlier (by this run or another) that is no longer in memory."""
        assert self.db is not None
        row = self.db.execute("SELECT * FROM sessions WHERE key = ?", [key]).fetchone()
        return _Session.from_row(row) if row is not None else None

    def _apply_event(self, s: _Session, e: SessionEvent) -> None:
        s.from_tag = e.from_tag or s.from_tag
        s.to_tag = e.to_tag or s.to_tag
        if s.created is None:
            s.created = e.time
        if e.event_type == EventType.TERMINATED:
            s.advance(EventType.TERMINATED)
            if s.ended is None:
                s.ended, s.ended_by = e.time, e.origin
                self._ended[s.key] = e.time
        elif e.event_type in _RANK:
            if e.method == "INVITE" and e.event_type in (EventType.ANSWERED, EventType.REJECTED):
                if s.final_status is None:
                    s.final_status, s.final_reason = e.status, e.reason
                if e.event_type == EventType.ANSWERED and s.answered is None:
                    s.answered = e.time
            if e.method == "INVITE" or e.event_type == EventType.NEW:
                s.advance(e.event_type)

    def _apply_invite(self, s: _Session, summary: Summary, m: MessageRecord) -> None:
        s.from_party = s.from_party or summary.from_
        s.to_party = s.to_party or summary.to
        s.ruri = s.ruri or summary.ruri
        s.transport, s.local, s.remote = m.transport, m.local, m.remote
        s.invite_cseq = summary.cseq
        if s.created is None or m.time < s.created:
            s.created = m.time

    def _apply_message(
        self, m: MessageRecord, summary: Summary, dirty: dict[str, _Session]
    ) -> str | None:
        """Update the message's session from it; the session's key, if known."""
        ours = m.direction == "out"
        # Which of our sessions it belongs to: the caller's (UAC) or the callee's (UAS) side.
        # We sent the request of this transaction if we send a request or receive a response.
        we_requested = ours == summary.is_request
        initial = summary.method == "INVITE" and not summary.to_has_tag
        keys = self._callids.get(summary.callid)
        if initial:
            entity = "UAC" if ours else "UAS"
        elif keys is not None and len(keys) == 1:
            entity = next(iter(keys))
        else:
            caller_requested = keys is not None and _tag(summary.from_) == self._caller_tag(keys)
            entity = "UAC" if we_requested == caller_requested else "UAS"
        key = keys.get(entity) if keys else None
        s = (dirty.get(key) or self._live.get(key)) if key else None
        if s is None and ours and summary.status >= 300 and summary.cseq_method == "INVITE":
            s = self._refused(m, summary, dirty)
            key = s.key if s is not None else None
        if initial:
            if s is None:
                self._invites[(summary.callid, entity)] = _Invite(m.time, summary, m)
                while len(self._invites) > _REMEMBER:
                    self._invites.popitem(last=False)
                return key
            if s.ruri is None:
                self._apply_invite(s, summary, m)
                dirty[s.key] = s
            return key
        if (
            s is not None
            and not summary.is_request
            and summary.cseq_method == "INVITE"
            and we_requested == (s.entity_type == "UAC")
            and (s.invite_cseq is None or summary.cseq == s.invite_cseq)
        ):
            if summary.status >= 200 and s.final_status is None:
                s.final_status, s.final_reason = summary.status, summary.reason
                if summary.status < 300:
                    s.answered = s.answered or m.time
                    s.advance(EventType.ANSWERED)
                else:
                    s.advance(EventType.REJECTED)
                dirty[s.key] = s
            elif 100 < summary.status < 200:
                s.advance(EventType.EARLY)
                dirty[s.key] = s
        return key

    def _refused(
        self, m: MessageRecord, summary: Summary, dirty: dict[str, _Session]
    ) -> _Session | None:
        """A call the incoming policy refused: the engine made no session (so no events), but
        the log keeps one, keyed ``refused:CALL-ID``, so that history lists it."""
        invite = self._invites.pop((summary.callid, "UAS"), None)
        if invite is None:
            return None
        s = _Session(f"refused:{summary.callid}", summary.callid, "UAS", "in", created=invite.time)
        self._apply_invite(s, invite.summary, invite.message)
        s.from_tag = _tag(invite.summary.from_)
        s.to_tag = _tag(summary.to)
        s.final_status, s.final_reason = summary.status, summary.reason
        s.state, s.ended, s.ended_by = EventType.TERMINATED, m.time, "local"
        self._live[s.key] = s
        self._ended[s.key] = m.time
        self._callids.setdefault(s.callid, {})["UAS"] = s.key
        dirty[s.key] = s
        return s

    def _caller_tag(self, keys: dict[str, str]) -> str | None:
        for key in keys.values():
            s = self._live.get(key)
            if s is not None:
                return s.from_tag
        return None

    def _forget_old(self, now: float) -> None:
        """Drop ended sessions from memory once late messages are unlikely."""
        while self._ended:
            key, ended = next(iter(self._ended.items()))
            if now - ended < _LINGER and len(self._ended) < _REMEMBER:
                break
            self._ended.popitem(last=False)
            self._live.pop(key, None)
        while len(self._live) > _REMEMBER:  # sessions that never ended: keep the newest
            self._live.pop(next(iter(self._live)))
