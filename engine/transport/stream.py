"""One TCP or TLS connection, either way: framing, keep-alive pongs, idle timeout, send queue."""

import asyncio
from collections.abc import Callable
from typing import Protocol, cast

from engine.sip.errors import ParseError
from engine.sip.framer import StreamFramer
from engine.sip.message import Limits
from engine.sip.target import Target

from .base import Listener, Owner, logger

#: Bytes a connection may hold unsent (the peer not reading) before messages are refused.
MAX_WRITE_BUFFER = 1 << 20
#: The pong that answers a CRLFCRLF ping (RFC 5626 section 4.4.1).
PONG = b"\r\n"


class StreamOwner(Owner, Protocol):
    """What a stream connection also tells its owner: when it opens and closes."""

    def stream_opened(self, conn: "StreamConnection") -> None:
        """The connection is up (after the TLS handshake): register it under its peer address."""

    def stream_closing(self, conn: "StreamConnection") -> None:
        """The connection is closing: send nothing more on it."""

    def stream_closed(self, conn: "StreamConnection") -> None:
        """The connection is gone."""

    def listener_for(self, transport: str, local: tuple[str, int]) -> Listener:
        """The listener to report for a connection we opened, whose own end is ``local``."""


class StreamConnection(asyncio.Protocol):
    """The asyncio protocol of one TCP or TLS connection.

    A connection we open is made before it connects: what is sent meanwhile is queued.
    """

    def __init__(
        self,
        owner: StreamOwner,
        transport_name: str,
        limits: Limits,
        idle_timeout: float,
        listener: Listener | None = None,
    ) -> None:
        self._owner = owner
        #: "tcp" or "tls".
        self.transport_name = transport_name
        #: The listener that accepted it, or (for one we opened) the one the owner chose.
        self.listener = listener
        self._limits = limits
        self._idle_timeout = idle_timeout
        self._framer = StreamFramer(limits)
        self._transport: asyncio.Transport | None = None
        self._queue: list[tuple[bytes, Target]] = []
        self._queued_bytes = 0
        self._crlf_run = 0
        # TLS data that came with the end of the handshake, before connection_made.
        self._early: list[bytes] = []
        self._early_eof = False
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        #: The peer's address (IP, port) and ours, once connected.
        self.peer: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        #: The peer as a Target, once connected.
        self.source: Target | None = None
        #: True once closing has begun: nothing more is sent on it.
        self.closing = False
        #: Done when the connection is gone (or never came up).
        self.closed: asyncio.Future[None] = self._loop.create_future()

    def __repr__(self) -> str:
        return f"<{self.transport_name} connection {self.local} <-> {self.peer}>"

    # -- asyncio callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if not peer or not local:
            transport.abort()
            return
        self.peer = (peer[0], peer[1])
        self.local = (local[0], local[1])
        self.source = Target(self.transport_name, peer[0], peer[1])
        if self.listener is None:
            self.listener = self._owner.listener_for(self.transport_name, self.local)
        if self.closing:  # closed while connecting
            transport.close()
            return
        self._owner.stream_opened(self)
        if self.closing:  # refused: the owner is stopping
            return
        self._touch()
        self._arm_timer()
        queue, self._queue, self._queued_bytes = self._queue, [], 0
        for data, target in queue:
            self._write(data, target)
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)
        if self._early_eof and not self.eof_received():
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:  # after a TLS handshake, before connection_made
            self._early.append(data)
            return
        if self.closing:
            return
        self._touch()
        framer = self._framer
        before = framer.pending
        try:
            frames = framer.feed(data)
        except ParseError as exc:
            logger.warning("closing %s connection from %s: %s", self.transport_name, self.peer, exc)
            self.close()
            return
        # What the framer skipped is CRLF: keep-alives between messages.
        skipped = before + len(data) - sum(map(len, frames)) - framer.pending
        if frames or framer.pending:
            self._crlf_run = skipped
        else:
            self._crlf_run += skipped
        if self._crlf_run >= 4:  # a CRLFCRLF ping, answered with a CRLF pong
            self._crlf_run = 0
            assert self._transport is not None
            self._transport.write(PONG)
        for frame in frames:
            self._deliver(frame)
            if self.closing:
                break

    def eof_received(self) -> bool:
        if self._transport is None:  # as in data_received
            self._early_eof = True
            return True
        if not self.closing:
            rest = self._framer.eof()  # a message without Content-Length runs to the end
            if rest is not None:
                self._deliver(rest)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.info("%s connection with %s lost: %s", self.transport_name, self.peer, exc)
        self._set_closing()
        self._owner.stream_closed(self)
        self._fail_queue("the connection closed")
        if not self.closed.done():
            self.closed.set_result(None)

    # -- used by the owner --------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True once the connection is up and until it starts closing."""
        return self._transport is not None and not self.closing

    def send(self, data: bytes, target: Target) -> None:
        """Send one message now, or queue it until the connection is up."""
        if self.closing:
            self._owner.report_error(target, f"cannot send to {target}: the connection is closing")
        elif self._transport is None:
            if self._queued_bytes + len(data) > MAX_WRITE_BUFFER:
                self._owner.report_error(
                    target, f"cannot send to {target}: too much queued while connecting"
                )
                return
            self._queue.append((data, target))
            self._queued_bytes += len(data)
        else:
            self._write(data, target)

    def connect_failed(self, reason: str) -> None:
        """The connection could not be opened: fail what was queued."""
        self._set_closing()
        self._owner.stream_closed(self)
        self._fail_queue(reason)
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        """Close gracefully (what is already written is still sent)."""
        self._set_closing()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping what is unsent."""
        self._set_closing()
        if self._transport is not None:
            self._transport.abort()

    # -- internals ----------------------------------------------------------------------------

    def _deliver(self, frame: bytes) -> None:
        assert self.source is not None and self.listener is not None and self.local is not None
        self._owner.deliver(frame, self.source, self.listener, self.local)

    def _write(self, data: bytes, target: Target) -> None:
        transport = self._transport
        assert transport is not None and self.local is not None and self.peer is not None
        if transport.is_closing():
            self._owner.report_error(target, f"cannot send to {target}: the connection is closing")
            return
        if transport.get_write_buffer_size() + len(data) > MAX_WRITE_BUFFER:
            self._owner.report_error(
                target, f"cannot send to {target}: the peer is not reading (send buffer full)"
            )
            return
        transport.write(data)
        self._touch()
        self._owner.trace("out", self.transport_name, self.local, self.peer, data)

    def _fail_queue(self, reason: str) -> None:
        queue, self._queue, self._queued_bytes = self._queue, [], 0
        for _data, target in queue:
            self._owner.report_error(target, f"cannot send to {target}: {reason}")

    def _set_closing(self) -> None:
        if not self.closing:
            self.closing = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._owner.stream_closing(self)

    def _touch(self) -> None:
        self._last_activity = self._loop.time()

    def _arm_timer(self) -> None:
        self._timer = self._loop.call_at(
            self._last_activity + self._idle_timeout, self._check_idle, self._last_activity
        )

    def _check_idle(self, armed_at: float) -> None:
        self._timer = None
        if self.closing:
            return
        if self._last_activity == armed_at:  # nothing since the timer was armed
            logger.info(
                "closing %s connection with %s: idle for %g s",
                self.transport_name, self.peer, self._idle_timeout,
            )  # fmt: skip
            self.close()
        else:
            self._arm_timer()


class TlsAcceptor(asyncio.Protocol):
    """Takes a TCP connection accepted by a TLS listener and hands it on for the handshake.

    The handshake runs in a task (``loop.start_tls``) that the owner tracks, so that stopping the
    transport can abort a handshake in progress.
    """

    def __init__(self, start: Callable[[asyncio.Transport], None]) -> None:
        self._start = start

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        transport.pause_reading()  # start_tls resumes it, so no byte of the handshake is lost
        self._start(transport)
