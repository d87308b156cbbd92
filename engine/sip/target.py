"""Where a message comes from or goes to: transport, address and port."""

from dataclasses import dataclass

RELIABLE_TRANSPORTS = frozenset({"tcp", "tls", "ws", "wss"})


@dataclass(frozen=True, slots=True)
class Target:
    """A transport address. ``host`` is an IP address (IPv6 without brackets) or a host name."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """True for stream transports, where SIP does not retransmit (RFC 3261 section 17)."""
        return self.transport in RELIABLE_TRANSPORTS

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"
