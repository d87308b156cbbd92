"""The control API's configuration: the ``[mi]`` table of the TOML file, and its flags.

```toml
[mi]
enabled = true                          # --no-mi turns it off
listen = "127.0.0.1:8888"               # --mi-listen HOST:PORT ([::1]:8888 for IPv6)
token_file = "~/.config/uaconsole/mi.token"   # --mi-token-file (mode 0600), or --mi-token
tls_certificate = "/etc/uaconsole/mi.pem"     # --mi-tls-cert: HTTPS and WSS
tls_key = "/etc/uaconsole/mi.key"             # --mi-tls-key
allowed_hosts = ["console.example.net"] # Host names this listener answers to, beyond its address
allowed_origins = ["http://127.0.0.1:8080"]   # --mi-allow-origin: browser pages allowed to call
allow_headers = ["Route"]               # engine-owned headers extra_headers may carry anyway
client_start_rate = 50                  # ua_session_client_start per second (0: no limit)
max_sessions = 1000                     # concurrent sessions (0: no limit)
max_request_bytes = 262144              # HTTP request body
max_body_bytes = 32768                  # the `body` parameter
max_header_bytes = 8192                 # the `extra_headers` parameter
max_batch = 100                         # requests in one JSON-RPC batch
event_buffer = 10000                    # events kept for WebSocket replay (?since=SEQ)
subscriber_queue = 10000                # events a slow subscriber may fall behind by

[[mi.webhooks]]
url = "http://127.0.0.1:9000/ua-events"
event_types = ["ANSWERED", "TERMINATED"]  # empty or absent: every event
retries = 3                             # attempts after the first
timeout = 5.0                           # seconds per attempt
queue = 1000                            # events waiting; beyond that the oldest are lost
headers = { "X-Api-Key" = "..." }
```
Every problem is a ConfigError naming the key (``mi.listen``) or flag (``--mi-listen``).
"""

import argparse
import ipaddress
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.ua.policy import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
#: The shortest token accepted: guessing must stay hopeless.
MIN_TOKEN_LENGTH = 16
#: Headers the engine writes itself; extra_headers may not carry them unless allowed by name.
ENGINE_OWNED_HEADERS = (
    "Via", "From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards", "Contact",
    "Route", "Record-Route", "Content-Type",
)  # fmt: skip
#: RFC 3261 section 7.3.3 compact forms of the owned headers.
COMPACT_FORMS = {
    "v": "Via", "f": "From", "t": "To", "i": "Call-ID", "l": "Content-Length", "m": "Contact",
    "c": "Content-Type",
}  # fmt: skip
EVENT_TYPES = ("NEW", "EARLY", "ANSWERED", "REJECTED", "UPDATED", "TERMINATED")
_LISTEN_RE = re.compile(r"\[(?P<v6>[^\]]+)\]:(?P<port>\d{1,5})|(?P<host>[^:\[\]]+):(?P<p>\d{1,5})")
_TOKEN_NAME_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_KEYS = {
    "enabled", "listen", "token", "token_file", "tls_certificate", "tls_key", "allowed_hosts",
    "allowed_origins", "allow_headers", "client_start_rate", "max_sessions", "max_request_bytes",
    "max_body_bytes", "max_header_bytes", "max_batch", "event_buffer", "subscriber_queue",
    "webhooks",
}  # fmt: skip
_WEBHOOK_KEYS = {"url", "event_types", "retries", "timeout", "queue", "headers"}


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One HTTP endpoint that receives every event (or those of ``event_types``) as a POST."""

    url: str
    event_types: tuple[str, ...] = ()
    retries: int = 3
    timeout: float = 5.0
    queue: int = 1000
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MiConfig:
    """Everything the control API is started with."""

    enabled: bool = True
    #: The address to bind: an IP address (IPv6 without brackets).
    host: str = DEFAULT_HOST
    #: The port to bind; 0 asks the system for a free one (tests).
    port: int = DEFAULT_PORT
    #: The bearer token every request must carry; None: no authentication (loopback only).
    token: str | None = None
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    #: Host header values accepted beyond the listener's own address (and ``localhost``).
    allowed_hosts: tuple[str, ...] = ()
    #: Origin header values accepted; any other Origin is refused.
    allowed_origins: tuple[str, ...] = ()
    #: Engine-owned headers (canonical names) that extra_headers may carry.
    allow_headers: tuple[str, ...] = ()
    client_start_rate: float = 50.0
    max_sessions: int = 1000
    max_request_bytes: int = 256 * 1024
    max_body_bytes: int = 32 * 1024
    max_header_bytes: int = 8 * 1024
    max_batch: int = 100
    event_buffer: int = 10000
    subscriber_queue: int = 10000
    webhooks: tuple[WebhookConfig, ...] = field(default=())

    @property
    def loopback(self) -> bool:
        """True when the listener is reachable from this machine only."""
        return ipaddress.ip_address(self.host).is_loopback

    @property
    def wildcard(self) -> bool:
        """True when the listener binds every interface."""
        return ipaddress.ip_address(self.host).is_unspecified

    @property
    def scheme(self) -> str:
        """``https`` with a certificate, else ``http``."""
        return "https" if self.tls_certificate else "http"

    def check(self) -> "MiConfig":
        """Refuse combinations that would be unsafe; returns self."""
        if not self.enabled:
            return self
        if not self.loopback and not self.token:
            raise ConfigError(
                f"listening on {self.host}, which other machines can reach, needs a token "
                "(--mi-token-file FILE with mode 0600, or mi.token_file)",
                "mi.listen",
            )
        if bool(self.tls_certificate) != bool(self.tls_key):
            raise ConfigError("tls_certificate and tls_key go together", "mi.tls_certificate")
        return self


def parse_listen(text: str, where: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8888`` for IPv6; ``localhost`` means 127.0.0.1)."""
    text = text.strip()
    m = _LISTEN_RE.fullmatch(text)
    if m is None:
        raise ConfigError(
            f"expected HOST:PORT, e.g. 127.0.0.1:8888 or [::1]:8888, not {text!r}", where
        )
    host = m["v6"] or m["host"]
    port = int(m["port"] or m["p"])
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{host!r} is not an IP address (or localhost)", where) from None
    if port > 65535:
        raise ConfigError(f"port {port} is beyond 65535", where)
    return host, port


def read_token_file(path: Path, where: str) -> str:
    """The token in ``path``; the file must be readable by its owner only (mode 0600 or 0400)."""
    path = path.expanduser()
    try:
        info = path.stat()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}", where) from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path} has mode {mode:04o}: others may read the token; run chmod 600 {path}", where
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(f"{path} belongs to another user", where)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}", where) from None
    return check_token(token, where)


def check_token(token: str, where: str) -> str:
    """A usable token: long enough, printable ASCII without spaces."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"the token must be at least {MIN_TOKEN_LENGTH} characters", where)
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError("the token must be printable ASCII without spaces", where)
    return token


def canonical_header(name: str) -> str | None:
    """The canonical name of an engine-owned header (compact forms too), else None."""
    lowered = name.lower()
    if lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    for owned in ENGINE_OWNED_HEADERS:
        if owned.lower() == lowered:
            return owned
    return None


def from_toml_file(path: Path) -> MiConfig:
    """The ``[mi]`` table of a configuration file (defaults where it has none)."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"no such file {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    return from_dict(data.get("mi", {}))


def from_dict(table: Any) -> MiConfig:
    """From the parsed ``[mi]`` table."""
    if not isinstance(table, dict):
        raise ConfigError("must be a table", "mi")
    bad = set(table) - _KEYS
    if bad:
        raise ConfigError(f"unknown key (known: {', '.join(sorted(_KEYS))})", f"mi.{min(bad)}")
    return with_values(MiConfig(), table, "mi.")


def with_values(
    config: MiConfig, values: dict[str, Any], prefix: str, labels: dict[str, str] | None = None
) -> MiConfig:
    """A copy with the given keys changed (None values are skipped); errors name
    ``prefix + key``, or ``labels[key]`` when given (the flag)."""
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        where = (labels or {}).get(key) or f"{prefix}{key}"
        if key == "enabled":
            changes[key] = _bool(value, where)
        elif key == "listen":
            changes["host"], changes["port"] = parse_listen(_string(value, where), where)
        elif key == "token":
            changes["token"] = check_token(_string(value, where), where)
        elif key == "token_file":
            changes["token"] = read_token_file(Path(_string(value, where)), where)
        elif key in ("tls_certificate", "tls_key"):
            path = Path(_string(value, where)).expanduser()
            if not path.is_file():
                raise ConfigError(f"no such file {path}", where)
            changes[key] = path
        elif key == "allowed_hosts":
            changes[key] = tuple(h.lower() for h in _strings(value, where))
        elif key == "allowed_origins":
            changes[key] = tuple(_origin(o, where) for o in _strings(value, where))
        elif key == "allow_headers":
            names = []
            for name in _strings(value, where):
                canonical = canonical_header(name)
                if canonical is None:
                    raise ConfigError(
                        f"{name!r} is not an engine-owned header "
                        f"({', '.join(ENGINE_OWNED_HEADERS)}); others need no permission",
                        where,
                    )
                names.append(canonical)
            changes[key] = tuple(names)
        elif key == "client_start_rate":
            changes[key] = _number(value, where, 0, 1_000_000)
        elif key in ("max_sessions",):
            changes[key] = int(_number(value, where, 0, 10_000_000, whole=True))
        elif key in (
            "max_request_bytes", "max_body_bytes", "max_header_bytes", "max_batch",
            "event_buffer", "subscriber_queue",
        ):  # fmt: skip
            changes[key] = int(_number(value, where, 1, 64 * 1024 * 1024, whole=True))
        elif key == "webhooks":
            if not isinstance(value, list):
                raise ConfigError("must be an array of tables ([[mi.webhooks]])", where)
            changes[key] = tuple(_webhook(v, f"{where}[{i}]") for i, v in enumerate(value))
        else:
            raise ConfigError("unknown key", where)
    return replace(config, **changes)


def add_mi_arguments(parser: argparse.ArgumentParser) -> None:
    """The control API's flags of ``uaconsole serve`` (and of the console)."""
    group = parser.add_argument_group("control API (MI over HTTP)")
    group.add_argument(
        "--mi-listen", metavar="HOST:PORT",
        help=f"where the JSON-RPC control API listens (default {DEFAULT_HOST}:{DEFAULT_PORT}); "
        "an address other machines can reach needs a token",
    )  # fmt: skip
    group.add_argument("--no-mi", action="store_true", help="do not start the control API")
    group.add_argument(
        "--mi-token", metavar="TOKEN",
        help="bearer token required on every request (visible in ps; prefer --mi-token-file)",
    )  # fmt: skip
    group.add_argument(
        "--mi-token-file", metavar="FILE", help="read the bearer token from FILE (mode 0600)"
    )
    group.add_argument("--mi-tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    group.add_argument("--mi-tls-key", metavar="FILE", help="the certificate's private key")
    group.add_argument(
        "--mi-allow-origin", action="append", metavar="ORIGIN",
        help="a browser Origin allowed to call the API, e.g. http://127.0.0.1:8080 (repeatable)",
    )  # fmt: skip


def mi_config_from_args(args: argparse.Namespace) -> MiConfig:
    """The ``[mi]`` table of ``--config`` (if any) with the flags applied on top; checked."""
    path = getattr(args, "config", None)
    config = from_toml_file(path) if path else MiConfig()
    if getattr(args, "no_mi", False):
        return replace(config, enabled=False)
    flags = {
        "listen": "--mi-listen",
        "token": "--mi-token",
        "token_file": "--mi-token-file",
        "tls_certificate": "--mi-tls-cert",
        "tls_key": "--mi-tls-key",
        "allowed_origins": "--mi-allow-origin",
    }
    values = {key: getattr(args, flag[2:].replace("-", "_"), None) for key, flag in flags.items()}
    config = with_values(config, values, "--", flags)
    return config.check()


def _webhook(value: Any, where: str) -> WebhookConfig:
    if not isinstance(value, dict):
        raise ConfigError("must be a table with at least url", where)
    bad = set(value) - _WEBHOOK_KEYS
    if bad:
        known = ", ".join(sorted(_WEBHOOK_KEYS))
        raise ConfigError(f"unknown key (known: {known})", f"{where}.{min(bad)}")
    if "url" not in value:
        raise ConfigError("missing", f"{where}.url")
    url = _string(value["url"], f"{where}.url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an http:// or https:// URL", f"{where}.url")
    types = tuple(t.upper() for t in _strings(value.get("event_types", []), f"{where}.event_types"))
    for t in types:
        if t not in EVENT_TYPES:
            known = ", ".join(EVENT_TYPES)
            raise ConfigError(f"{t!r} is not one of {known}", f"{where}.event_types")
    headers = value.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and _TOKEN_NAME_RE.fullmatch(k) and isinstance(v, str)
        and not any(c in v for c in "\r\n\x00")
        for k, v in headers.items()
    ):  # fmt: skip
        raise ConfigError("must be a table of header names to one-line strings", f"{where}.headers")
    return WebhookConfig(
        url=url,
        event_types=types,
        retries=int(_number(value.get("retries", 3), f"{where}.retries", 0, 20, whole=True)),
        timeout=_number(value.get("timeout", 5.0), f"{where}.timeout", 0.1, 120),
        queue=int(_number(value.get("queue", 1000), f"{where}.queue", 1, 1_000_000, whole=True)),
        headers=tuple(headers.items()),
    )


def _origin(text: str, where: str) -> str:
    if text == "null":
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(f"{text!r} is not an origin such as http://127.0.0.1:8080", where)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, not {value!r}", where)
    return value


def _string(value: Any, where: str) -> str:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\x00"):
        raise ConfigError(f"must be a non-empty one-line string, not {value!r}", where)
    return value


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [_string(value, where)]
    if isinstance(value, list | tuple):
        return [_string(v, where) for v in value]
    raise ConfigError("must be a string or a list of strings", where)


def _number(value: Any, where: str, low: float, high: float, whole: bool = False) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"must be a number, not {value!r}", where)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"must be a number, not {value!r}", where) from None
    if whole and number != int(number):
        raise ConfigError(f"must be a whole number, not {value!r}", where)
    if not low <= number <= high:
        raise ConfigError(f"{value} is outside {low:g}..{high:g}", where)
    return number
