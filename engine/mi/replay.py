"""The event ring and the WebSocket stream ``GET /events[?since=SEQ]``.

The ring reads one ``engine.events()`` reader, keeps the last ``event_buffer`` events and hands
each new one to every connected WebSocket. A client gets every event as the same JSON-RPC
notification the udp:/tcp: subscribers get (``E_UA_SESSION``), in ``seq`` order. With
``?since=SEQ`` it first gets what the ring still holds after SEQ, so a client that reconnects with
the last ``seq`` it saw loses nothing the engine still has.

Whatever a client cannot get is said explicitly, in place, by a notification of its own::

    {"jsonrpc": "2.0", "method": "events_lost",
     "params": {"first_seq": 120, "last_seq": 130, "count": 11, "reason": "expired"}}

``reason`` is ``expired`` (no longer held: the ring keeps the last ``event_buffer`` events from
the engine's start, and the history hook, when the composition root wires one to the SQLite log,
did not have them either), ``engine_overflow`` (the ring itself fell behind the engine) or
``slow_consumer`` (this connection read too slowly and its oldest queued events were dropped).
A SEQ beyond the newest event (the engine restarted, numbering began again) is answered with::

    {"jsonrpc": "2.0", "method": "events_reset", "params": {"since": 5000, "latest": 42}}

followed by every event held, from the oldest.
"""

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from engine.api.engine import Engine
from engine.api.streams import Gap, Reader
from engine.ua.events import SessionEvent
from engine.ua.registration import RegistrationEvent

from .subscribers import EVENTS, event_name

log = logging.getLogger("uaconsole.mi")

#: Events one WebSocket may have queued before its oldest are dropped.
CLIENT_QUEUE = 10000
EXPIRED = "expired"
ENGINE_OVERFLOW = "engine_overflow"
SLOW_CONSUMER = "slow_consumer"


def lost_notice(first: int, last: int, reason: str) -> dict[str, Any]:
    """The ``events_lost`` notification for seq ``first..last``."""
    return {
        "jsonrpc": "2.0",
        "method": "events_lost",
        "params": {
            "first_seq": first,
            "last_seq": last,
            "count": last - first + 1,
            "reason": reason,
        },
    }


def event_notice(event: SessionEvent | RegistrationEvent) -> dict[str, Any]:
    """The ``E_UA_SESSION`` (or ``E_UA_REGISTRATION``) notification of ``event``."""
    return {"jsonrpc": "2.0", "method": event_name(event), "params": event.params()}


class _Client:
    """One WebSocket's queue: events (or lost-range markers) waiting to be written."""

    def __init__(self, limit: int) -> None:
        self.items: deque[dict[str, Any]] = deque()
        self.ready = asyncio.Event()
        self.limit = limit
        #: Seq range dropped because this client was slow, not yet reported.
        self.dropped: tuple[int, int] | None = None
        self.last_seq = 0

    def push(self, event: SessionEvent) -> None:
        if len(self.items) >= self.limit:
            old = self.items.popleft()
            seq = old["params"].get("seq") if old["method"] in EVENTS else None
            if seq is not None:
                first = self.dropped[0] if self.dropped else seq
                self.dropped = (first, seq)
        self.items.append(event_notice(event))
        self.ready.set()

    def push_notice(self, notice: dict[str, Any]) -> None:
        self.items.append(notice)
        self.ready.set()

    def take(self) -> list[dict[str, Any]]:
        out = []
        if self.dropped is not None:
            out.append(lost_notice(*self.dropped, SLOW_CONSUMER))
            self.dropped = None
        out.extend(self.items)
        self.items.clear()
        self.ready.clear()
        return out


class EventRing:
    """The last ``size`` events, and the WebSockets fed from them."""

    def __init__(self, engine: Engine, size: int) -> None:
        self._events: deque[SessionEvent] = deque(maxlen=size)
        #: Seq ranges the ring never got (it fell behind the engine), oldest first.
        self._holes: deque[tuple[int, int]] = deque(maxlen=1000)
        #: The first seq this ring saw; events before it are not held.
        self._first_seen: int | None = None
        self.last_seq = 0
        self._clients: set[_Client] = set()
        self._reader: Reader[SessionEvent] = engine.events(maxsize=max(size, 1000))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin reading the engine's events."""
        self._task = asyncio.create_task(self._run(), name="mi-event-ring")

    async def stop(self) -> None:
        """Stop reading; connected clients get nothing more."""
        self._reader.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async for item in self._reader:
            if isinstance(item, Gap):
                continue  # the seq numbers show where; see _add
            self._add(item)

    def _add(self, event: SessionEvent) -> None:
        if self._first_seen is None:
            self._first_seen = event.seq
        elif event.seq > self.last_seq + 1:
            hole = (self.last_seq + 1, event.seq - 1)
            self._holes.append(hole)
            log.warning("event ring fell behind: seq %d..%d lost", *hole)
            for client in self._clients:
                client.push_notice(lost_notice(*hole, ENGINE_OVERFLOW))
        self.last_seq = max(self.last_seq, event.seq)
        self._events.append(event)
        for client in self._clients:
            client.push(event)

    @property
    def held_from(self) -> int:
        """The oldest seq still held (``last_seq + 1`` when nothing is)."""
        return self._events[0].seq if self._events else self.last_seq + 1

    def replay(self, since: int) -> list[dict[str, Any]]:
        """Notifications for everything after ``since``: events held, and what is not."""
        expired, notices = self.replay_parts(since)
        if expired is None:
            return notices
        at = 1 if notices and notices[0]["method"] == "events_reset" else 0
        return [*notices[:at], lost_notice(*expired, EXPIRED), *notices[at:]]

    def replay_parts(self, since: int) -> tuple[tuple[int, int] | None, list[dict[str, Any]]]:
        """The seq range after ``since`` no longer held (or None), and the notifications of
        what is held (events, holes, a reset)."""
        out: list[dict[str, Any]] = []
        expired = None
        if since > self.last_seq:
            out.append(
                {
                    "jsonrpc": "2.0",
                    "method": "events_reset",
                    "params": {"since": since, "latest": self.last_seq},
                }
            )
            since = 0
        first_held = self.held_from
        if since + 1 < first_held and (self._events or self.last_seq):
            expired = (since + 1, first_held - 1)
        holes = [h for h in self._holes if h[1] > since and h[0] >= first_held]
        for event in self._events:
            while holes and holes[0][0] < event.seq:
                out.append(lost_notice(*holes.pop(0), ENGINE_OVERFLOW))
            if event.seq > since:
                out.append(event_notice(event))
        return expired, out

    def attach(self, since: int | None, limit: int = CLIENT_QUEUE) -> _Client:
        """A new client, primed with the replay after ``since`` (None: live events only)."""
        return self.attach_parts(since, limit)[0]

    def attach_parts(
        self, since: int | None, limit: int = CLIENT_QUEUE
    ) -> tuple[_Client, tuple[int, int] | None]:
        """A new client primed with what the ring holds after ``since``, and the range the ring
        no longer holds (for the caller to fetch elsewhere or report)."""
        client = _Client(limit)
        expired = None
        if since is not None:
            expired, notices = self.replay_parts(since)
            for notice in notices:
                client.push_notice(notice)
        self._clients.add(client)
        return client, expired

    def detach(self, client: _Client) -> None:
        """The client left."""
        self._clients.discard(client)

    @property
    def client_count(self) -> int:
        """Connected WebSockets."""
        return len(self._clients)


RING = web.AppKey("ring", EventRing)
#: Where older events may be found: ``await history(first_seq, last_seq)`` -> events in that
#: range (the SQLite log, once wired by the composition root); None: only the ring.
History = Callable[[int, int], Awaitable[list[SessionEvent]]]
HISTORY = web.AppKey("history", object)


async def _older(history: History | None, first: int, last: int) -> list[dict[str, Any]]:
    """Notifications for seq ``first..last``: what ``history`` still has, the rest as lost."""
    found: list[SessionEvent] = []
    if history is not None:
        try:
            found = sorted(
                (e for e in await history(first, last) if first <= e.seq <= last),
                key=lambda e: e.seq,
            )
        except Exception:
            log.exception("event history %d..%d unavailable", first, last)
            found = []
    out: list[dict[str, Any]] = []
    expected = first
    for event in found:
        if event.seq < expected:
            continue
        if event.seq > expected:
            out.append(lost_notice(expected, event.seq - 1, EXPIRED))
        out.append(event_notice(event))
        expected = event.seq + 1
    if expected <= last:
        out.append(lost_notice(expected, last, EXPIRED))
    return out


async def events_handler(request: web.Request) -> web.StreamResponse:
    """``GET /events[?since=SEQ]``: a WebSocket of JSON-RPC notifications."""
    ring = request.app[RING]
    since_text = request.query.get("since")
    since: int | None = None
    if since_text is not None:
        if not (since_text.isascii() and since_text.isdigit()) or len(since_text) > 18:
            raise web.HTTPBadRequest(text=f"since must be a seq number, not {since_text[:40]!r}\n")
        since = int(since_text)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    client, expired = ring.attach_parts(since)
    if expired is not None:  # older than the ring: from the history, else reported lost
        history = request.app.get(HISTORY)
        older = await _older(history if callable(history) else None, *expired)  # type: ignore[arg-type]
        reset = client.items and client.items[0]["method"] == "events_reset"
        for notice in reversed(older):
            client.items.insert(1 if reset else 0, notice)
        client.ready.set()

    async def write() -> None:
        while not ws.closed:
            await client.ready.wait()
            for notice in client.take():
                await ws.send_str(json.dumps(notice, separators=(",", ":")))

    writer = asyncio.create_task(write())
    try:
        async for message in ws:  # nothing is expected from the client; read to see it go
            if message.type == WSMsgType.ERROR:
                break
    finally:
        ring.detach(client)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await writer
    return ws
