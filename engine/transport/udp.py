"""One bound UDP socket: each datagram is one SIP message (RFC 3261 section 18.3).

The socket is read and written directly, with the event loop's ``add_reader``, rather than
through an asyncio datagram transport: one wake-up reads every datagram already queued (up to
``BATCH``), and a send is one ``sendto`` call. On a busy engine the asyncio transport's own
bookkeeping cost about 100 us per call of SIPp's uac flow, as much as the SIP work itself
(bench/README.md). A send that would block waits in a bounded queue, in order.
"""

import asyncio
import contextlib
import socket
from collections import deque

from engine.sip.message import Limits
from engine.sip.target import Target

from .base import Listener, Owner, TransportError, logger, normal_host

#: Datagrams read per wake-up at most, so that timers and other sockets get their turn.
BATCH = 64
#: Datagrams waiting for a socket that would block, at most; later ones are refused.
MAX_QUEUED = 10000
#: Receive buffer asked of the kernel (it caps it at net.core.rmem_max): room for a burst
#: while the engine is busy, instead of datagrams lost and retransmitted.
RECEIVE_BUFFER = 4 * 1024 * 1024

#: Read size: the largest UDP payload there can be, so that a size is never cut.
MAX_DATAGRAM = 65536

_Address = tuple[str, int]


class UdpEndpoint:
    """A UDP listener: receives into ``owner.deliver``, sends for the owner."""

    def __init__(
        self,
        owner: Owner,
        limits: Limits,
        sock: socket.socket,
        listener: Listener,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._owner = owner
        self._limits = limits
        self._sock = sock
        self._loop = loop
        self.listener = listener
        self._local = (listener.host, listener.port)
        self._queue: deque[tuple[bytes, _Address, Target]] = deque()
        self._closing = False
        self.closed: asyncio.Future[None] = loop.create_future()
        loop.add_reader(sock.fileno(), self._read_ready)

    @classmethod
    async def open(cls, owner: Owner, limits: Limits, host: str, port: int) -> "UdpEndpoint":
        """Bind ``host:port`` (an address or a name; port 0: any free port)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise TransportError(f"cannot resolve {host}: {exc}") from None
        family, _type, proto, _name, address = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):  # the kernel's default buffer still works
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind(address)
            bound_host, bound_port = sock.getsockname()[:2]
            listener = Listener("udp", normal_host(bound_host), bound_port)
            return cls(owner, limits, sock, listener, loop)
        except NotImplementedError:
            sock.close()
            raise TransportError(
                "this event loop cannot watch sockets (add_reader); on Windows use the "
                "selector event loop"
            ) from None
        except BaseException:
            sock.close()
            raise

    # -- receiving ----------------------------------------------------------------------------

    def _read_ready(self) -> None:
        sock = self._sock
        for _ in range(BATCH):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # An ICMP error for an earlier datagram (Windows reports it here): the socket
                # cannot tell which one.
                logger.info("UDP error on %s: %s", self.listener, exc)
                return
            self._received(data, addr)

    def _received(self, data: bytes, addr: tuple) -> None:
        host, port = addr[0], addr[1]
        if len(data) > self._limits.max_message:
            logger.warning(
                "dropped a %d-byte datagram from %s:%s on %s: larger than %d bytes",
                len(data), host, port, self.listener, self._limits.max_message,
            )  # fmt: skip
            return
        if not data.strip(b"\r\n"):
            return  # a keep-alive: CRLFs (RFC 5626 section 4.4.2 uses STUN on UDP, not handled)
        self._owner.deliver(data, Target("udp", host, port), self.listener, self._local)

    # -- sending ------------------------------------------------------------------------------

    def send(self, data: bytes, host: str, port: int, target: Target) -> None:
        """Send one datagram to an IP address; failures go to ``report_error``."""
        if self._closing:
            self._owner.report_error(target, f"cannot send to {target}: {self.listener} is closed")
            return
        if self._queue:  # earlier datagrams wait: keep the order
            self._enqueue(data, (host, port), target)
            return
        try:
            self._sock.sendto(data, (host, port))
        except (BlockingIOError, InterruptedError):
            self._enqueue(data, (host, port), target)
            self._loop.add_writer(self._sock.fileno(), self._write_ready)
            return
        except (OSError, ValueError) as exc:
            self._owner.report_error(target, f"cannot send to {target}: {exc}")
            return
        self._owner.trace("out", "udp", self._local, (host, port), data)

    def _enqueue(self, data: bytes, address: _Address, target: Target) -> None:
        if len(self._queue) >= MAX_QUEUED:
            self._owner.report_error(
                target,
                f"cannot send to {target}: {MAX_QUEUED} datagrams already wait on {self.listener}",
            )
            return
        self._queue.append((data, address, target))

    def _write_ready(self) -> None:
        queue = self._queue
        while queue:
            data, address, target = queue[0]
            try:
                self._sock.sendto(data, address)
            except (BlockingIOError, InterruptedError):
                return
            except (OSError, ValueError) as exc:
                queue.popleft()
                self._owner.report_error(target, f"cannot send to {target}: {exc}")
                continue
            queue.popleft()
            self._owner.trace("out", "udp", self._local, address, data)
        self._loop.remove_writer(self._sock.fileno())

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and writing and close the socket (datagrams still queued are lost)."""
        if self._closing:
            return
        self._closing = True
        fd = self._sock.fileno()
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        if self._queue:
            logger.info(
                "UDP listener %s closed with %d datagrams unsent", self.listener, len(self._queue)
            )
            self._queue.clear()
        self._sock.close()
        if not self.closed.done():
            self.closed.set_result(None)
