"""The engine's configuration: one TOML file, and command-line flags that override its keys.

```toml
[engine]
listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]   # --listen (repeatable)
advertised_contact = "sip:operator@198.51.100.7"        # --advertised-contact
credentials = ["alice:pbx.example.com:secret"]          # --credential (repeatable)
t1 = 0.5                                                # --t1 (also t2, t4)
log_level = "info"                                      # --log-level
tls_certificate = "/etc/uaconsole/cert.pem"             # needed for tls: listeners
tls_key = "/etc/uaconsole/key.pem"
tls_verify = true                                       # check servers we connect to
max_duration = 43200                                    # seconds, for flag t / t0
rtp_address = "198.51.100.7"                            # in generated SDP
rtp_ports = [20000, 29998]
user_agent = "UA Console"

untrusted = "accept"          # or "drop" or "reject:403": one answer for unknown sources
trusted = ["127.0.0.0/8"]     # sources always allowed (besides registrars and proxies)

[incoming]                                              # --incoming sets incoming.default
default = "manual"

[[accounts]]                  # one table per account; registers at start
name = "alice"
aor = "sip:alice@pbx.example.com"
registrar = "sip:pbx.example.com"       # default: the AoR's domain
outbound_proxy = "sip:proxy.example.com;lr"
username = "alice"                      # default: the AoR's user
password = "secret"
realm = "pbx.example.com"               # default: any realm this account's servers name
display_name = "Alice"
expires = 3600
transport = "udp"
keepalive = 30                          # seconds; 0: none
register = true
```
Every problem is a ConfigError whose message names the key and what is wrong.
"""

import ipaddress
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.sip import SipUri, parse_uri
from engine.sip.digest import ANY_REALM, Credential, parse_credential
from engine.sip.errors import LocalProtocolError, ParseError
from engine.sip.timers import TimerConfig
from engine.transport.spec import ListenSpec
from engine.ua.flags import DEFAULT_MAX_DURATION
from engine.ua.policy import ConfigError, IncomingPolicy
from engine.ua.registration import Account

DEFAULT_LISTEN = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")
LOG_LEVELS = ("debug", "info", "warning", "error")
_ENGINE_KEYS = {
    "listen", "advertised_contact", "credentials", "t1", "t2", "t4", "log_level",
    "tls_certificate", "tls_key", "tls_verify", "max_duration", "rtp_address", "rtp_ports",
    "user_agent", "key_prefix", "untrusted", "trusted",
}  # fmt: skip
_ACCOUNT_KEYS = {
    "name", "aor", "registrar", "outbound_proxy", "username", "password", "realm",
    "display_name", "expires", "transport", "keepalive", "register",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything the engine is started with."""

    listen: tuple[ListenSpec, ...] = tuple(ListenSpec.parse(s) for s in DEFAULT_LISTEN)
    incoming: IncomingPolicy = field(default_factory=lambda: IncomingPolicy.from_shortcut("manual"))
    credentials: tuple[Credential, ...] = ()
    advertised_contact: str | None = None
    timers: TimerConfig = field(default_factory=TimerConfig)
    log_level: str = "info"
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    tls_verify: bool = True
    max_duration: int = DEFAULT_MAX_DURATION
    rtp_address: str | None = None
    rtp_ports: tuple[int, int] = (20000, 29998)
    user_agent: str = "UA Console"
    key_prefix: str = "B2B"
    accounts: tuple[Account, ...] = ()
    untrusted: str = "accept"
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_toml_file(cls, path: Path) -> "EngineConfig":
        """Read a configuration file; ConfigError names the file and the problem."""
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"no such file {path}") from None
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read {path}: {error}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EngineConfig":
        """From a parsed TOML document."""
        unknown = set(data) - {"engine", "incoming", "mi", "store", "gui", "accounts"}
        if unknown:
            raise ConfigError(f"unknown table {sorted(unknown)[0]!r}")
        engine = data.get("engine", {})
        if not isinstance(engine, dict):
            raise ConfigError("must be a table", "engine")
        bad = set(engine) - _ENGINE_KEYS
        if bad:
            raise ConfigError(
                f"unknown key (known: {', '.join(sorted(_ENGINE_KEYS))})",
                f"engine.{sorted(bad)[0]}",
            )
        config = cls(
            incoming=IncomingPolicy.from_config(data),
            accounts=_accounts(data.get("accounts", [])),
        )
        return config.with_values(engine, "engine.")

    def with_values(self, values: dict[str, Any], prefix: str = "") -> "EngineConfig":
        """A copy with the given ``engine`` keys changed (command-line flags use this too)."""
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            where = f"{prefix}{key}"
            changes.update(_convert(key, value, where))
        timers = {k: changes.pop(k) for k in ("t1", "t2", "t4") if k in changes}
        config = replace(self, **changes)
        if timers:
            t = config.timers
            config = replace(config, timers=TimerConfig(
                timers.get("t1", t.t1), timers.get("t2", t.t2), timers.get("t4", t.t4)
            ))  # fmt: skip
        if config.timers.t2 < config.timers.t1:
            raise ConfigError("t2 must not be smaller than t1", f"{prefix}t2")
        if any(spec.transport == "tls" for spec in config.listen) and not (
            config.tls_certificate and config.tls_key
        ):
            raise ConfigError(
                "a tls: listener needs tls_certificate and tls_key", f"{prefix}listen"
            )
        return config

    def with_incoming(self, shortcut: str) -> "EngineConfig":
        """A copy whose default incoming rule is ``shortcut`` (manual, auto-answer, reject:CODE)."""
        try:
            default = IncomingPolicy.from_shortcut(shortcut).default
        except ValueError as error:
            raise ConfigError(str(error), "--incoming") from None
        return replace(self, incoming=replace(self.incoming, default=default))


def _convert(key: str, value: Any, where: str) -> dict[str, Any]:
    if key == "listen":
        items = _strings(value, where)
        if not items:
            raise ConfigError("needs at least one listener", where)
        try:
            return {"listen": tuple(ListenSpec.parse(item) for item in items)}
        except ValueError as error:
            raise ConfigError(str(error), where) from None
    if key == "credentials":
        try:
            return {"credentials": tuple(parse_credential(c) for c in _strings(value, where))}
        except LocalProtocolError as error:
            raise ConfigError(str(error), where) from None
    if key in ("t1", "t2", "t4"):
        number = _number(value, where)
        if not 0.01 <= number <= 120:
            raise ConfigError(f"{number} is outside 0.01..120 seconds", where)
        return {key: float(number)}
    if key == "log_level":
        if not isinstance(value, str) or value.lower() not in LOG_LEVELS:
            raise ConfigError(f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}", where)
        return {key: value.lower()}
    if key in ("tls_certificate", "tls_key"):
        path = Path(_string(value, where)).expanduser()
        if not path.is_file():
            raise ConfigError(f"no such file {path}", where)
        return {key: path}
    if key == "tls_verify":
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, not {value!r}", where)
        return {key: value}
    if key == "max_duration":
        number = _number(value, where)
        if number != int(number) or number < 1:
            raise ConfigError("must be a whole number of seconds, at least 1", where)
        return {key: int(number)}
    if key == "rtp_ports":
        if not (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(p, int) for p in value)
        ):
            raise ConfigError("must be two port numbers, [first, last]", where)
        first, last = value
        if not 1024 <= first <= last <= 65535:
            raise ConfigError(f"{first}..{last} is not a range within 1024..65535", where)
        return {key: (first, last)}
    if key == "untrusted":
        text = _string(value, where)
        code = text.split(":", 1)[1] if text.startswith("reject:") else ""
        if text not in ("accept", "drop") and not (code.isdigit() and 400 <= int(code) <= 699):
            raise ConfigError(
                f'must be "accept", "drop" or "reject:CODE" (400-699), not {text!r}', where
            )
        return {key: text}
    if key == "trusted":
        try:
            return {
                key: tuple(ipaddress.ip_network(n, strict=False) for n in _strings(value, where))
            }
        except ValueError as error:
            raise ConfigError(str(error), where) from None
    if key in ("advertised_contact", "rtp_address", "user_agent", "key_prefix"):
        return {key: _string(value, where)}
    raise ConfigError("unknown key", where)


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError("must be a string or a list of strings", where)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\x00"):
        raise ConfigError(f"must be a non-empty one-line string, not {value!r}", where)
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"must be a number, not {value!r}", where) from None
    return float(value)


def _accounts(items: Any) -> tuple[Account, ...]:
    """The ``[[accounts]]`` tables."""
    if not isinstance(items, list):
        raise ConfigError("must be an array of tables ([[accounts]])", "accounts")
    accounts: list[Account] = []
    for index, item in enumerate(items):
        where = f"accounts[{index}]"
        if not isinstance(item, dict):
            raise ConfigError("must be a table", where)
        unknown = set(item) - _ACCOUNT_KEYS
        if unknown:
            raise ConfigError(
                f"unknown key (known: {', '.join(sorted(_ACCOUNT_KEYS))})",
                f"{where}.{sorted(unknown)[0]}",
            )
        for required in ("name", "aor"):
            if required not in item:
                raise ConfigError("is required", f"{where}.{required}")
        name = _string(item["name"], f"{where}.name")
        if any(a.name == name for a in accounts):
            raise ConfigError(f"a second account named {name!r}", f"{where}.name")
        account = Account(
            name=name,
            aor=_string(item["aor"], f"{where}.aor"),
            registrar=_optional_string(item, "registrar", where),
            outbound_proxy=_optional_string(item, "outbound_proxy", where),
            display_name=_optional_string(item, "display_name", where),
            expires=int(_number(item.get("expires", 3600), f"{where}.expires")),
            transport=_choice(
                item.get("transport", "udp"), ("udp", "tcp", "tls"), f"{where}.transport"
            ),
            keepalive=_number(item.get("keepalive", 30), f"{where}.keepalive"),
            register=bool(item.get("register", True)),
        )
        try:
            aor = account.aor_uri()
            account.registrar_uri()
            if account.outbound_proxy and not isinstance(parse_uri(account.outbound_proxy), SipUri):
                raise ConfigError("must be a sip: URI", f"{where}.outbound_proxy")
        except (LocalProtocolError, ParseError) as error:
            raise ConfigError(str(error), where) from None
        if "password" in item:
            username = _optional_string(item, "username", where) or aor.user or ""
            realm = _optional_string(item, "realm", where) or ANY_REALM
            try:
                credential = Credential(
                    username, realm, _string(item["password"], f"{where}.password")
                )
            except LocalProtocolError as error:
                raise ConfigError(str(error), where) from None
            account = replace(account, credentials=(credential,))
        accounts.append(account)
    return tuple(accounts)


def _optional_string(table: dict[str, Any], key: str, where: str) -> str | None:
    return _string(table[key], f"{where}.{key}") if key in table else None


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}, not {value!r}", where)
    return value
