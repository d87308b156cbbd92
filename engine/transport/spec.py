"""What to listen on: ``udp:127.0.0.1:5060``, ``tcp:[::1]:5070``, ``tls:0.0.0.0:5061``."""

import ipaddress
import re
from dataclasses import dataclass

#: The transports a listener can use, in the order error messages list them.
TRANSPORTS = ("udp", "tcp", "tls")

_FORM = "transport:host:port, e.g. udp:127.0.0.1:5060 or tcp:[::1]:5070"
_SPEC_RE = re.compile(
    r"(?P<transport>[^:\[\]]*):(?:\[(?P<v6>[^\[\]]*)\]|(?P<host>[^\[\]]*)):(?P<port>[^:\[\]]*)"
)


def _check_host(host: str) -> str | None:
    """None if ``host`` is an IP address, else what is wrong with it."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "expected an IPv4 address or an IPv6 address in brackets"
    return None


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """One address to listen on. Port 0 asks the system for a free (ephemeral) port."""

    #: "udp", "tcp" or "tls".
    transport: str
    #: The IP address to bind, IPv6 without brackets ("0.0.0.0" and "::" mean every interface).
    host: str
    #: The port to bind, or 0 for an ephemeral port.
    port: int

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"bad transport {self.transport!r}: expected udp, tcp or tls")
        problem = _check_host(self.host)
        if problem:
            raise ValueError(f"bad host {self.host!r}: {problem}")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ValueError(f"bad port {self.port!r}: expected a number from 0 to 65535")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"bad port {self.port!r}: expected a number from 0 to 65535")

    @classmethod
    def parse(cls, text: str) -> "ListenSpec":
        """Read ``transport:host:port`` (IPv6 hosts in brackets). Raises ValueError."""
        match = _SPEC_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"bad listen address {text!r}: expected {_FORM}")
        transport = match["transport"].lower()
        if transport not in TRANSPORTS:
            raise ValueError(
                f"bad transport {match['transport']!r} in {text!r}: expected udp, tcp or tls"
            )
        if match["v6"] is not None:
            host = match["v6"]
            if ":" not in host or _check_host(host):
                raise ValueError(
                    f"bad host '[{host}]' in {text!r}: expected an IPv6 address in brackets"
                )
        else:
            host = match["host"]
            if ":" in host or _check_host(host):
                raise ValueError(
                    f"bad host {host!r} in {text!r}: expected an IPv4 address "
                    f"or an IPv6 address in brackets ({_FORM})"
                )
        port_text = match["port"]
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            raise ValueError(
                f"bad port {port_text!r} in {text!r}: expected a number from 0 to 65535"
            )
        return cls(transport, host, int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"
