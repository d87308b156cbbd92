"""One bound UDP socket: each datagram is one SIP message (RFC 3261 section 18.3)."""

import asyncio
from typing import cast

from engine.sip.message import Limits
from engine.sip.target import Target

from .base import Listener, Owner, logger


class UdpEndpoint(asyncio.DatagramProtocol):
    """The asyncio protocol of one UDP listener."""

    def __init__(self, owner: Owner, limits: Limits) -> None:
        self._owner = owner
        self._limits = limits
        self._transport: asyncio.DatagramTransport | None = None
        #: Set by the owner once the socket is bound.
        self.listener: Listener | None = None
        #: The target of the send in progress: sendto reports a failure through error_received.
        self._sending: Target | None = None
        self._send_failed = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        listener = self.listener
        if listener is None:
            return
        host, port = addr[0], addr[1]
        if len(data) > self._limits.max_message:
            logger.warning(
                "dropped a %d-byte datagram from %s:%s on %s: larger than %d bytes",
                len(data), host, port, listener, self._limits.max_message,
            )  # fmt: skip
            return
        if not data.strip(b"\r\n"):
            return  # a keep-alive: CRLFs (RFC 5626 section 4.4.2 uses STUN on UDP, not handled)
        self._owner.deliver(
            data, Target("udp", host, port), listener, (listener.host, listener.port)
        )

    def error_received(self, exc: Exception) -> None:
        target = self._sending
        if target is not None:
            self._send_failed = True
            self._owner.report_error(target, f"cannot send to {target}: {exc}")
        else:
            # An ICMP error for an earlier datagram: the socket cannot tell which one.
            logger.info("UDP error on %s: %s", self.listener, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.warning("UDP listener %s closed: %s", self.listener, exc)
        if not self.closed.done():
            self.closed.set_result(None)

    # -- used by the owner --------------------------------------------------------------------

    def send(self, data: bytes, host: str, port: int, target: Target) -> None:
        """Send one datagram to an IP address; failures go to ``report_error``."""
        transport = self._transport
        listener = self.listener
        if transport is None or listener is None or transport.is_closing():
            self._owner.report_error(target, f"cannot send to {target}: {listener} is closed")
            return
        self._sending = target
        self._send_failed = False
        try:
            transport.sendto(data, (host, port))
        except (OSError, ValueError) as exc:
            self._send_failed = True
            self._owner.report_error(target, f"cannot send to {target}: {exc}")
        finally:
            self._sending = None
        if self._send_failed:
            return
        self._owner.trace("out", "udp", (listener.host, listener.port), (host, port), data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        elif not self.closed.done():
            self.closed.set_result(None)
