"""SipTransport: every SIP socket of the engine, moving whole messages to and from one callback.

It knows nothing of transactions. Incoming messages (one datagram, or one frame cut from a stream)
go to ``on_message(data, source, listener)``; ``send(data, target)`` puts bytes on the wire and
never raises for a network problem: it logs it and tells ``on_error(target, message)``.
"""

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from engine.sip.message import DEFAULT_LIMITS, Limits
from engine.sip.target import Target

from .base import Listener, TraceRecord, TransportError, family_of, logger, normal_host
from .spec import ListenSpec
from .stream import StreamConnection, TlsAcceptor
from .udp import UdpEndpoint

__all__ = ["Listener", "SipTransport", "TraceRecord", "TransportError"]

#: Seconds allowed to open a TCP connection or finish a TLS handshake (64*T1, Timer B's length).
CONNECT_TIMEOUT = 32.0
#: Seconds stop() waits for connections to close gracefully before aborting them.
CLOSE_GRACE = 2.0

OnMessage = Callable[[bytes, Target, Listener], None]
OnTrace = Callable[[TraceRecord], None]
OnError = Callable[[Target, str], None]
_StreamKey = tuple[str, str, int]


def _reason(exc: OSError) -> str:
    """``address already in use`` rather than asyncio's long wrapped text."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def _family_name(family: socket.AddressFamily) -> str:
    return "IPv6" if family == socket.AF_INET6 else "IPv4"


class SipTransport:
    """UDP, TCP and TLS listeners and connections, for one engine."""

    def __init__(
        self,
        on_message: OnMessage,
        *,
        limits: Limits = DEFAULT_LIMITS,
        tls_server: ssl.SSLContext | None = None,
        tls_client: ssl.SSLContext | None = None,
        idle_timeout: float = 300.0,
        on_trace: OnTrace | None = None,
        on_error: OnError | None = None,
    ) -> None:
        """``on_message`` gets every whole message received.

        ``tls_server`` is needed to listen on TLS; ``tls_client`` verifies the servers we connect
        to (by default, the system's CAs and the target's host name). Connections with no traffic
        for ``idle_timeout`` seconds are closed. ``on_trace`` sees every message in and out;
        ``on_error`` is told of each message that could not be sent.
        """
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout!r}")
        self._on_message = on_message
        self._limits = limits
        self._tls_server = tls_server
        self._tls_client = tls_client
        self._idle_timeout = idle_timeout
        self._on_trace = on_trace
        self._on_error = on_error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Listener] = []
        self._udp: dict[Listener, UdpEndpoint] = {}
        self._servers: dict[Listener, asyncio.Server] = {}
        #: Open (or opening) stream connections by (transport, peer host, peer port).
        self._streams: dict[_StreamKey, StreamConnection] = {}
        self._connections: set[StreamConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, specs: Sequence[ListenSpec]) -> list[Listener]:
        """Open every listener; on the first failure close those opened and raise TransportError."""
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        for spec in specs:
            if spec.transport == "tls" and self._tls_server is None:
                raise TransportError(
                    f"cannot listen on {spec}: TLS needs a certificate and key "
                    "(no TLS server context was given)"
                )
        opened: list[Listener] = []
        try:
            for spec in specs:
                opened.append(await self._open(spec))
        except BaseException:
            await self._close_listeners(opened)
            raise
        return opened

    async def stop(self) -> None:
        """Close every listener and connection, and wait until they are closed."""
        self._stopped = True
        for server in self._servers.values():
            server.close()  # accept nothing more
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        waiters = [conn.closed for conn in connections]
        if waiters:
            _done, pending = await asyncio.wait(waiters, timeout=CLOSE_GRACE)
            if pending:
                for conn in connections:
                    if not conn.closed.done():
                        conn.abort()
                await asyncio.wait(pending, timeout=CLOSE_GRACE)
        await self._close_listeners(list(self._listeners))
        self._streams.clear()
        self._connections.clear()

    @property
    def listeners(self) -> list[Listener]:
        """The open listeners, in the order they were opened."""
        return list(self._listeners)

    @property
    def connection_count(self) -> int:
        """TCP and TLS connections open or opening now, both directions."""
        return len(self._connections)

    # -- sending ------------------------------------------------------------------------------

    def send(self, data: bytes, target: Target, listener: Listener | None = None) -> None:
        """Send one whole message; never blocks, never raises for a network problem.

        Call it from the event loop's thread.

        UDP goes out from ``listener`` if given, else from the first UDP listener of the
        target's address family. TCP and TLS reuse a connection with the target (whichever side
        opened it), else open one. A host name is resolved first.
        """
        if not data:
            return
        transport = target.transport.lower()
        if self._stopped or self._loop is None:
            self.report_error(target, f"cannot send to {target}: the transport is not running")
        elif not 0 < target.port < 65536:
            self.report_error(target, f"cannot send to {target}: bad port")
        elif transport == "udp":
            self._send_udp(data, target, listener)
        elif transport in ("tcp", "tls"):
            self._send_stream(data, target, transport)
        else:
            self.report_error(target, f"cannot send to {target}: unsupported transport")

    def _send_udp(self, data: bytes, target: Target, listener: Listener | None) -> None:
        family = family_of(target.host)
        if family is None:
            self._spawn(self._resolve_and_send_udp(data, target, listener))
            return
        endpoint = self._udp_endpoint(family, listener)
        if endpoint is None:
            self.report_error(
                target, f"cannot send to {target}: no UDP listener for {_family_name(family)}"
            )
            return
        endpoint.send(data, target.host, target.port, target)

    async def _resolve_and_send_udp(
        self, data: bytes, target: Target, listener: Listener | None
    ) -> None:
        assert self._loop is not None
        try:
            infos = await self._loop.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            self.report_error(target, f"cannot resolve {target.host}: {exc}")
            return
        for family, _type, _proto, _name, sockaddr in infos:
            endpoint = self._udp_endpoint(family, listener)
            if endpoint is not None:
                endpoint.send(data, sockaddr[0], sockaddr[1], target)
                return
        self.report_error(target, f"cannot send to {target}: no UDP listener for its addresses")

    def _udp_endpoint(
        self, family: socket.AddressFamily, listener: Listener | None
    ) -> UdpEndpoint | None:
        if listener is not None and listener.family == family and listener in self._udp:
            return self._udp[listener]
        for candidate in self._listeners:
            if candidate.transport == "udp" and candidate.family == family:
                return self._udp[candidate]
        return None

    def _send_stream(self, data: bytes, target: Target, transport: str) -> None:
        key = (transport, normal_host(target.host), target.port)
        conn = self._streams.get(key)
        if conn is not None and not conn.closing:
            conn.send(data, target)
            return
        context: ssl.SSLContext | None = None
        if transport == "tls":
            if self._tls_client is None:
                self._tls_client = ssl.create_default_context()
            context = self._tls_client
        conn = StreamConnection(self, transport, self._limits, self._idle_timeout)
        self._connections.add(conn)
        self._streams[key] = conn
        conn.send(data, target)
        self._spawn(self._connect(conn, target, context))

    async def _connect(
        self, conn: StreamConnection, target: Target, context: ssl.SSLContext | None
    ) -> None:
        assert self._loop is not None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self._loop.create_connection(
                    lambda: conn, target.host, target.port, ssl=context
                )
        except asyncio.CancelledError:
            conn.connect_failed("the transport stopped")
            raise
        except TimeoutError:
            conn.connect_failed(f"no connection within {CONNECT_TIMEOUT:g} s")
        except (OSError, ssl.SSLError, ValueError) as exc:
            conn.connect_failed(f"cannot connect: {exc}")

    # -- what the socket protocols report -----------------------------------------------------

    def deliver(
        self, data: bytes, source: Target, listener: Listener, local: tuple[str, int]
    ) -> None:
        """Trace a received message and hand it to on_message; its exceptions stop here."""
        self.trace("in", source.transport, local, (source.host, source.port), data)
        try:
            self._on_message(data, source, listener)
        except Exception:
            logger.exception("on_message failed for a message from %s", source)

    def trace(
        self,
        direction: str,
        transport: str,
        local: tuple[str, int],
        remote: tuple[str, int],
        data: bytes,
    ) -> None:
        """Hand a TraceRecord to on_trace, if there is one."""
        if self._on_trace is None:
            return
        record = TraceRecord(
            time.time(), direction, transport, local[0], local[1], remote[0], remote[1], data
        )
        try:
            self._on_trace(record)
        except Exception:
            logger.exception("on_trace failed")

    def report_error(self, target: Target, message: str) -> None:
        """Log a failed send and tell on_error."""
        logger.warning("%s", message)
        if self._on_error is None:
            return
        try:
            self._on_error(target, message)
        except Exception:
            logger.exception("on_error failed")

    def stream_opened(self, conn: StreamConnection) -> None:
        assert conn.peer is not None
        if self._stopped:
            conn.abort()
            return
        self._connections.add(conn)
        self._streams[(conn.transport_name, normal_host(conn.peer[0]), conn.peer[1])] = conn

    def stream_closing(self, conn: StreamConnection) -> None:
        for key in [key for key, value in self._streams.items() if value is conn]:
            del self._streams[key]

    def stream_closed(self, conn: StreamConnection) -> None:
        self.stream_closing(conn)
        self._connections.discard(conn)

    def listener_for(self, transport: str, local: tuple[str, int]) -> Listener:
        family = family_of(local[0])
        for listener in self._listeners:
            if listener.transport == transport and listener.family == family:
                return listener
        return Listener(transport, normal_host(local[0]), local[1])

    # -- internals ----------------------------------------------------------------------------

    async def _open(self, spec: ListenSpec) -> Listener:
        loop = asyncio.get_running_loop()
        if spec.transport == "udp":
            try:
                endpoint = await UdpEndpoint.open(self, self._limits, spec.host, spec.port)
            except OSError as exc:
                raise TransportError(f"cannot listen on {spec}: {_reason(exc)}") from None
            listener = endpoint.listener
            self._udp[listener] = endpoint
        else:
            box: list[Listener] = []

            def accept() -> asyncio.Protocol:
                if spec.transport == "tls":
                    return TlsAcceptor(lambda raw: self._spawn(self._handshake(raw, box[0])))
                return StreamConnection(self, "tcp", self._limits, self._idle_timeout, box[0])

            try:
                server = await loop.create_server(accept, spec.host, spec.port, start_serving=False)
            except OSError as exc:
                raise TransportError(f"cannot listen on {spec}: {_reason(exc)}") from None
            host, port = server.sockets[0].getsockname()[:2]
            listener = Listener(spec.transport, normal_host(host), port)
            box.append(listener)
            self._servers[listener] = server
            await server.start_serving()
        self._listeners.append(listener)
        return listener

    async def _handshake(self, raw: asyncio.Transport, listener: Listener) -> None:
        """The server side of a TLS handshake on a connection ``listener`` accepted."""
        assert self._loop is not None and self._tls_server is not None
        conn = StreamConnection(self, "tls", self._limits, self._idle_timeout, listener)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                tls = await self._loop.start_tls(raw, conn, self._tls_server, server_side=True)
        except asyncio.CancelledError:
            raw.abort()
            raise
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            peer = raw.get_extra_info("peername")
            logger.info("TLS handshake from %s on %s failed: %r", peer, listener, exc)
            raw.abort()
            return
        if tls is None:  # not in CPython 3.11, but its signature allows it
            raw.abort()
            return
        conn.connection_made(tls)

    async def _close_listeners(self, listeners: list[Listener]) -> None:
        for listener in listeners:
            if listener in self._listeners:
                self._listeners.remove(listener)
            endpoint = self._udp.pop(listener, None)
            if endpoint is not None:
                endpoint.close()
                await endpoint.closed
            server = self._servers.pop(listener, None)
            if server is not None:
                server.close()
                await server.wait_closed()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
