"""Who may talk to the control API: Host, Origin and bearer-token checks, in one middleware.

- Host must name this listener: its own address (any IP address when it binds every interface),
  ``localhost`` when it is on loopback, or a name in ``allowed_hosts``; a Host with a port must
  carry the listener's port. This stops DNS rebinding: a page whose name resolves to 127.0.0.1
  still sends its own name as Host.
- An Origin header, when present, must be in ``allowed_origins``. Browsers send it on
  cross-site POSTs and WebSocket handshakes; programs usually send none.
- With a token configured, ``Authorization: Bearer TOKEN`` is required (compared in constant
  time), 401 otherwise.

Refusals are plain-text HTTP errors (403, 401) that say what was refused.
"""

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from .config import MiConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` / ``[v6][:port]`` -> (host lower-cased, port); None if malformed."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1 :]
    else:
        if value.count(":") > 1:
            return None
        host, colon, port_text = value.partition(":")
        rest = ":" + port_text if colon else ""
    port = None
    if rest:
        if not rest.startswith(":") or not rest[1:].isdigit() or not rest[1:].isascii():
            return None
        port = int(rest[1:])
    if not host:
        return None
    return host.lower(), port


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class Guard:
    """The checks, for one listener (``port`` is the bound one)."""

    def __init__(self, config: MiConfig, port: int = 0) -> None:
        self.config = config
        self.port = port or config.port

    def host_problem(self, value: str | None) -> str | None:
        """Why this Host header is refused, or None."""
        if not value:
            return "the request has no Host header"
        parsed = split_host(value)
        if parsed is None:
            return f"malformed Host {value[:80]!r}"
        host, port = parsed
        if port is not None and port != self.port:
            return f"Host {value[:80]!r} names port {port}, this listener is on {self.port}"
        address = _ip(host)
        own = ipaddress.ip_address(self.config.host)
        if address is not None:
            if address == own or self.config.wildcard:
                return None
        elif (host == "localhost" and own.is_loopback) or host in self.config.allowed_hosts:
            return None
        return (
            f"Host {value[:80]!r} is not this server's address or name "
            "(add the name to mi.allowed_hosts if it is one)"
        )

    def origin_problem(self, value: str | None) -> str | None:
        """Why this Origin header is refused, or None (absent is fine)."""
        if value is None:
            return None
        if value.strip().lower().rstrip("/") in self.config.allowed_origins:
            return None
        return f"Origin {value[:80]!r} is not allowed (see --mi-allow-origin)"

    def token_ok(self, header: str | None) -> bool:
        """True if no token is configured, or ``header`` carries it."""
        token = self.config.token
        if not token:
            return True
        if not header:
            return False
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse (403, 401) before any handler runs."""
        problem = self.host_problem(request.headers.get("Host"))
        if problem is None:
            problem = self.origin_problem(request.headers.get("Origin"))
        if problem is not None:
            raise web.HTTPForbidden(text=f"403 Forbidden: {problem}\n")
        if not self.token_ok(request.headers.get("Authorization")):
            raise web.HTTPUnauthorized(
                text="401 Unauthorized: this API needs 'Authorization: Bearer TOKEN'\n",
                headers={"WWW-Authenticate": 'Bearer realm="uaconsole"'},
            )
        return await handler(request)
