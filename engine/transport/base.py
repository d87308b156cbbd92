"""The types the transport hands out, and what its socket protocols need from their owner."""

import functools
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Protocol

from engine.sip.errors import EngineError
from engine.sip.target import Target

logger = logging.getLogger("uaconsole.transport")


class TransportError(EngineError):
    """A listener could not be opened; the message is one line a person can act on."""


@dataclass(frozen=True, slots=True)
class Listener:
    """A bound socket (UDP) or listening socket (TCP, TLS)."""

    #: "udp", "tcp" or "tls".
    transport: str
    #: The bound IP address, IPv6 without brackets.
    host: str
    #: The bound port: the one the system chose when port 0 was asked.
    port: int

    @property
    def hostport(self) -> str:
        """``127.0.0.1:5060`` or ``[::1]:5060``, as Via and Contact write it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def family(self) -> socket.AddressFamily:
        """AF_INET or AF_INET6."""
        return family_of(self.host) or socket.AF_INET

    def __str__(self) -> str:
        return f"{self.transport}:{self.hostport}"


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One whole SIP message that crossed the wire, for the ladder view and the message log."""

    #: Unix time when it was received, or handed to the socket.
    time: float
    #: "in" or "out".
    direction: str
    #: "udp", "tcp" or "tls".
    transport: str
    #: Our address: the listener's (UDP) or the connection's own end (TCP, TLS).
    local_host: str
    local_port: int
    #: The peer's address.
    remote_host: str
    remote_port: int
    #: The message, exactly as on the wire.
    data: bytes


class Owner(Protocol):
    """What a UDP endpoint or a stream connection reports to the transport that made it."""

    def deliver(
        self, data: bytes, source: Target, listener: Listener, local: tuple[str, int]
    ) -> None:
        """A whole message arrived from ``source`` at our address ``local``."""

    def trace(
        self,
        direction: str,
        transport: str,
        local: tuple[str, int],
        remote: tuple[str, int],
        data: bytes,
    ) -> None:
        """A message crossed the wire."""

    def report_error(self, target: Target, message: str) -> None:
        """Sending to ``target`` failed."""


@functools.lru_cache(maxsize=1024)  # asked on every send, of the same few peers
def family_of(host: str) -> socket.AddressFamily | None:
    """AF_INET or AF_INET6 for an IP address, None for a host name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def normal_host(host: str) -> str:
    """An IP address in canonical text (``::1`` for ``0:0::1``), or a host name in lower case."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower().rstrip(".")
