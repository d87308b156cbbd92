"""``event_subscribe`` subscribers: ``udp:`` datagrams and persistent ``tcp:`` streams.

Each subscriber reads its own ``engine.events()`` reader, so a slow or unreachable one never
slows the engine or the others: its reader drops the oldest events beyond ``subscriber_queue``
and the loss is counted (``lost``), logged and shown by ``subscribers_list``.

- ``udp:HOST:PORT``: one JSON-RPC notification per datagram (OpenSIPS event_datagram). A
  notification larger than a datagram can carry is counted lost.
- ``tcp:HOST:PORT[/method]``: one connection, notifications written back to back with no
  delimiter (OpenSIPS event_stream); ``/method`` replaces the event name as JSON-RPC method. A
  connection that fails is retried with exponential back-off (0.5 s doubling to 30 s); the
  events meanwhile wait in the reader's queue.

A subscription lasts ``expire`` seconds (default 3600) and is renewed by subscribing again;
``expire`` 0 removes it. Expired subscribers are dropped, reachable or not.
"""

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass

from engine.api.engine import Engine
from engine.api.streams import Gap, Reader
from engine.ua.events import SessionEvent
from engine.ua.registration import RegistrationEvent

from .params import EventSocket

log = logging.getLogger("uaconsole.mi")

EVENT_NAME = "E_UA_SESSION"
REGISTRATION_EVENT = "E_UA_REGISTRATION"
#: The events published, with their ids for events_list (any stable numbers do) and what
#: the engine's event stream carries for each.
EVENTS: dict[str, tuple[int, type]] = {
    EVENT_NAME: (0, SessionEvent),
    REGISTRATION_EVENT: (1, RegistrationEvent),
}


def event_name(event: SessionEvent | RegistrationEvent) -> str:
    """The MI event name of an engine event."""
    return REGISTRATION_EVENT if isinstance(event, RegistrationEvent) else EVENT_NAME


#: The largest UDP payload over IPv4.
MAX_DATAGRAM = 65507
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


def notification(event: SessionEvent | RegistrationEvent, method: str | None = None) -> bytes:
    """The JSON-RPC notification of ``event``, as bytes."""
    return json.dumps(
        {"jsonrpc": "2.0", "method": method or event_name(event), "params": event.params()},
        separators=(",", ":"),
    ).encode("ascii")


@dataclass
class Counters:
    """What a subscriber did: delivered, lost (with the reason logged each time)."""

    delivered: int = 0
    lost: int = 0


class Subscriber:
    """One subscription; ``run`` until it expires or is removed."""

    def __init__(
        self, engine: Engine, socket: EventSocket, expire: int, queue: int, event: str = EVENT_NAME
    ) -> None:
        self.event = event
        self._kind = EVENTS[event][1]
        self.socket = socket
        self.expire = expire
        self.expires_at = time.monotonic() + expire
        self.counters = Counters()
        self._reader: Reader[SessionEvent] = engine.events(maxsize=queue)
        self._task: asyncio.Task[None] | None = None
        self._renewed = asyncio.Event()

    def start(self) -> None:
        """Begin delivering in a task of its own."""
        self._task = asyncio.create_task(self._run(), name=f"mi-subscriber {self.socket}")

    def renew(self, expire: int) -> None:
        """Subscribed again: the subscription now ends ``expire`` seconds from now."""
        self.expire = expire
        self.expires_at = time.monotonic() + expire
        self._renewed.set()

    @property
    def remaining(self) -> float:
        """Seconds until expiry."""
        return self.expires_at - time.monotonic()

    async def stop(self) -> None:
        """End delivery now and leave the event stream."""
        self._reader.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close()

    def to_mi(self) -> dict[str, object]:
        """The ``subscribers_list`` entry (OpenSIPS's fields, then ours)."""
        return {
            "socket": str(self.socket),
            "expire": self.expire,
            "delivered": self.counters.delivered,
            "lost": self.counters.lost,
        }

    def _lose(self, count: int, why: str) -> None:
        self.counters.lost += count
        log.warning(
            "subscriber %s: %d event(s) lost (%s); %d lost in all",
            self.socket, count, why, self.counters.lost,
        )  # fmt: skip

    async def _run(self) -> None:
        try:
            while True:
                remaining = self.remaining
                if remaining <= 0:
                    log.info("subscriber %s expired", self.socket)
                    return
                try:
                    item = await asyncio.wait_for(self._next(), timeout=remaining)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    return
                if isinstance(item, Gap):
                    self._lose(item.lost, "it fell behind the engine")
                    continue
                if isinstance(item, self._kind):  # the events of this subscription only
                    await self._deliver(item)
        finally:
            self._reader.close()

    async def _next(self) -> SessionEvent | Gap:
        return await self._reader.get()

    async def _deliver(self, event: SessionEvent) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        pass


class _Datagram(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: the next try may work
        log.debug("datagram subscriber: %s", exc)


class UdpSubscriber(Subscriber):
    """One notification per datagram."""

    _transport: asyncio.DatagramTransport | None = None

    async def _deliver(self, event: SessionEvent) -> None:
        data = notification(event)
        if len(data) > MAX_DATAGRAM:
            self._lose(1, f"seq {event.seq} is {len(data)} bytes, more than a datagram holds")
            return
        if self._transport is None or self._transport.is_closing():
            loop = asyncio.get_running_loop()
            try:
                self._transport, _ = await loop.create_datagram_endpoint(
                    _Datagram, remote_addr=(self.socket.host, self.socket.port)
                )
            except OSError as error:
                self._lose(1, f"cannot send to {self.socket}: {error}")
                return
        self._transport.sendto(data)
        self.counters.delivered += 1

    async def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class TcpSubscriber(Subscriber):
    """One persistent connection, notifications back to back; reconnects with back-off."""

    _writer: asyncio.StreamWriter | None = None
    _backoff = BACKOFF_FIRST
    #: Seconds a write may take before the connection is given up as stuck.
    write_timeout = 10.0

    async def _next(self) -> SessionEvent | Gap:
        # Connect before taking an event, so that events wait in the reader while unreachable.
        while self._writer is None:
            if self.remaining <= 0:
                raise TimeoutError
            try:
                _, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.socket.host, self.socket.port), timeout=5.0
                )
                self._backoff = BACKOFF_FIRST
                log.info("subscriber %s connected", self.socket)
            except (OSError, TimeoutError) as error:
                log.info(
                    "subscriber %s unreachable (%s); retrying in %.1f s",
                    self.socket, error, self._backoff,
                )  # fmt: skip
                self._renewed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._renewed.wait(), timeout=min(self._backoff, max(self.remaining, 0))
                    )
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        return await self._reader.get()

    async def _deliver(self, event: SessionEvent) -> None:
        writer = self._writer
        assert writer is not None
        try:
            writer.write(notification(event, self.socket.method))
            await asyncio.wait_for(writer.drain(), timeout=self.write_timeout)
            self.counters.delivered += 1
        except (OSError, TimeoutError, ConnectionError) as error:
            self._lose(1, f"seq {event.seq}: connection failed ({error})")
            await self._close()

    async def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)


class SubscriberHub:
    """Every ``event_subscribe`` subscription, keyed by its socket."""

    def __init__(self, engine: Engine, queue: int) -> None:
        self._engine = engine
        self._queue = queue
        self._subscribers: dict[str, Subscriber] = {}

    async def subscribe(self, socket: EventSocket, expire: int, event: str = EVENT_NAME) -> None:
        """Add or renew (``expire`` > 0) or remove (``expire`` 0) ``socket``'s subscription to
        ``event``."""
        self._sweep()
        key = _hub_key(event, str(socket))
        current = self._subscribers.get(key)
        if expire == 0:
            if current is not None:
                del self._subscribers[key]
                await current.stop()
            return
        if current is not None:
            current.renew(expire)
            return
        kind = UdpSubscriber if socket.proto == "udp" else TcpSubscriber
        subscriber = kind(self._engine, socket, expire, self._queue, event)
        self._subscribers[key] = subscriber
        subscriber.start()

    def find(self, text: str, event: str = EVENT_NAME) -> Subscriber | None:
        """The live subscriber to ``event`` whose socket prints as ``text``."""
        self._sweep()
        return self._subscribers.get(_hub_key(event, text))

    def list(self, event: str = EVENT_NAME) -> list[Subscriber]:
        """Live subscribers to ``event``."""
        self._sweep()
        return [s for s in self._subscribers.values() if s.event == event]

    async def stop(self) -> None:
        """End every subscription."""
        subscribers, self._subscribers = list(self._subscribers.values()), {}
        for subscriber in subscribers:
            await subscriber.stop()

    def _sweep(self) -> None:
        for key, subscriber in list(self._subscribers.items()):
            if subscriber.remaining <= 0:
                del self._subscribers[key]
                asyncio.get_running_loop().create_task(subscriber.stop())


def _hub_key(event: str, socket: str) -> str:
    return f"{event} {socket}"
