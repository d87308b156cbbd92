"""The MI commands: the UA session API and the core commands generic clients call.

Every handler takes the bound, typed and validated parameters (see ``params``) and returns the
JSON result, or raises MiError. Engine refusals (CommandError) keep OpenSIPS's code and message,
with the precise reason as ``data``.
"""

import logging
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from engine.api.engine import Engine
from engine.sip import LocalProtocolError
from engine.ua.errors import CommandError

from .config import MiConfig
from .params import (
    MAX_KEY,
    MAX_REASON,
    MiError,
    Signature,
    bad_value,
    check_content_type,
    check_extra_headers,
    check_line,
    check_method,
    check_party,
    check_uri,
    invalid,
    parse_event_socket,
)
from .subscribers import EVENT_NAME, EVENTS, SubscriberHub
from .webhooks import Webhooks

log = logging.getLogger("uaconsole.mi")

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Command:
    """A command's name, signature and handler."""

    name: str
    signature: Signature
    handler: Handler


def product_version() -> str:
    """The installed version of UA Console."""
    try:
        return version("uaconsole")
    except PackageNotFoundError:
        return "unknown"


class RateLimiter:
    """A token bucket: ``rate`` per second, bursts of up to ``rate`` (at least 1)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> float:
        """0.0 if a token was taken, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class Commands:
    """Every command, bound to one engine."""

    def __init__(
        self,
        engine: Engine,
        config: MiConfig,
        hub: SubscriberHub,
        webhooks: Webhooks,
        describe_listener: Callable[[], str] = lambda: "",
    ) -> None:
        self.engine = engine
        self.config = config
        self.hub = hub
        self.webhooks = webhooks
        self.limiter = RateLimiter(config.client_start_rate)
        self._describe_listener = describe_listener
        self.table: dict[str, Command] = {}
        for name, signature, handler in (
            (
                "ua_session_client_start",
                Signature(
                    ("ruri", "to", "from"),
                    (
                        "proxy",
                        "body",
                        "content_type",
                        "extra_headers",
                        "flags",
                        "socket",
                        "account",
                    ),
                    needs={"content_type": "body"},
                ),
                self.client_start,
            ),
            (
                "ua_session_reply",
                Signature(
                    ("key", "method", "code", "reason"),
                    ("body", "content_type", "extra_headers"),
                    ints=frozenset({"code"}),
                    needs={"content_type": "body"},
                ),
                self.reply,
            ),
            (
                "ua_session_update",
                Signature(
                    ("key", "method"),
                    ("body", "content_type", "extra_headers"),
                    needs={"content_type": "body"},
                ),
                self.update,
            ),
            ("ua_session_terminate", Signature(("key",), ("extra_headers",)), self.terminate),
            ("ua_session_list", Signature((), ("key",)), self.list_sessions),
            (
                "event_subscribe",
                Signature(("event", "socket"), ("expire",), ints=frozenset({"expire"})),
                self.event_subscribe,
            ),
            ("ua_registration_list", Signature((), ("account",)), self.registration_list),
            ("ua_register", Signature(("account",)), self.register),
            ("ua_unregister", Signature(("account",)), self.unregister),
            ("events_list", Signature(), self.events_list),
            (
                "subscribers_list",
                Signature((), ("event", "socket"), needs={"socket": "event"}),
                self.subscribers_list,
            ),
            ("which", Signature((), ("command",)), self.which),
            ("version", Signature(), self.version),
            ("uptime", Signature(), self.uptime),
            ("ps", Signature(), self.ps),
        ):
            self.table[name] = Command(name, signature, handler)

    async def call(self, method: str, params: Any) -> Any:
        """Run ``method`` with raw JSON ``params``: the result, or MiError."""
        command = self.table.get(method)
        if command is None:
            raise MiError(-32601, "Method not found")
        bound = command.signature.bind(params)
        try:
            return await command.handler(bound)
        except CommandError as error:
            raise MiError(error.code, error.message, error.detail) from None
        except LocalProtocolError as error:
            raise MiError(500, "Command failed", str(error)) from None
        except RuntimeError as error:  # the engine stopped under us
            raise MiError(503, "Engine not running", str(error)) from None

    # -- UA sessions -----------------------------------------------------------------------------

    def _message_parts(self, p: dict[str, Any]) -> dict[str, Any]:
        """body / content_type / extra_headers, checked, as keyword arguments."""
        out: dict[str, Any] = {}
        if "body" in p:
            body = p["body"]
            if len(body.encode("utf-8")) > self.config.max_body_bytes:
                raise bad_value("body", f"longer than {self.config.max_body_bytes} bytes")
            if "\x00" in body:
                raise bad_value("body", "contains NUL")
            out["body"] = body or None
        if "content_type" in p:
            out["content_type"] = check_content_type(p["content_type"])
        if "extra_headers" in p:
            out["extra_headers"] = check_extra_headers(p["extra_headers"], self.config) or None
        return out

    def _key(self, p: dict[str, Any]) -> str:
        key = p["key"]
        if len(key) > MAX_KEY or not key.isprintable() or not key.isascii():
            raise bad_value("key", f"not a session key (printable ASCII, at most {MAX_KEY})")
        return key

    async def client_start(self, p: dict[str, Any]) -> str:
        ruri = check_uri("ruri", p["ruri"], sip_only="proxy" not in p)
        to = check_party("to", p["to"])
        from_ = check_party("from", p["from"])
        kwargs = self._message_parts(p)
        if "proxy" in p:
            kwargs["proxy"] = check_uri("proxy", p["proxy"], sip_only=True)
        flags = p.get("flags", "")
        if len(flags) > 64 or not (flags.isascii() and (flags.isalnum() or not flags)):
            raise bad_value("flags", "letters and digits only (t<N>, a, r, d, h, b, n)")
        kwargs["flags"] = flags
        if "socket" in p:
            socket = p["socket"].strip(" \t").lower()
            local = {str(li).lower() for li in self.engine.listeners}
            if socket not in local:
                raise MiError(
                    500,
                    "Non-local socket specified",
                    f"{p['socket'][:80]!r} is not one of the engine's listeners "
                    f"({', '.join(sorted(local))})",
                )
            kwargs["socket"] = socket
        if "account" in p:
            kwargs["account"] = check_line("account", p["account"], MAX_KEY)
        limit = self.config.max_sessions
        if limit and len(self.engine.sessions()) >= limit:
            raise MiError(
                503, "Too many sessions", f"{limit} sessions are open, the configured maximum"
            )
        wait = self.limiter.take()
        if wait:
            raise MiError(
                503,
                "Rate limit exceeded",
                f"ua_session_client_start is limited to {self.config.client_start_rate:g} "
                f"per second; retry in {wait:.3f} s",
            )
        return await self.engine.client_start(ruri, to, from_, **kwargs)

    async def reply(self, p: dict[str, Any]) -> str:
        key = self._key(p)
        method = check_method("method", p["method"])
        code = p["code"]
        if not 100 <= code <= 699:
            raise bad_value("code", f"{code} is not a SIP status code (100..699)")
        reason = check_line("reason", p["reason"], MAX_REASON, empty=True)
        kwargs = self._message_parts(p)
        await self.engine.reply(key, method, code, reason, **kwargs)
        return "OK"

    async def update(self, p: dict[str, Any]) -> str:
        key = self._key(p)
        method = check_method("method", p["method"])
        kwargs = self._message_parts(p)
        await self.engine.update(key, method, **kwargs)
        return "OK"

    async def terminate(self, p: dict[str, Any]) -> str:
        key = self._key(p)
        extra = self._message_parts(p).get("extra_headers")
        await self.engine.terminate(key, extra_headers=extra)
        return "OK"

    async def list_sessions(self, p: dict[str, Any]) -> Any:
        if "key" in p:
            key = p["key"]
            if len(key) > MAX_KEY or not key.isprintable():
                raise MiError(400, "Bad format for b2b key", "not a session key")
            return self.engine.session(key).to_mi()
        return [info.to_mi() for info in self.engine.sessions()]

    # -- events ----------------------------------------------------------------------------------

    async def event_subscribe(self, p: dict[str, Any]) -> str:
        event = p["event"]
        if event not in EVENTS:
            raise MiError(
                400, "Bad parameter value", f"unknown event {event[:64]!r}: {', '.join(EVENTS)} are"
            )
        try:
            socket = parse_event_socket(p["socket"])
        except ValueError as error:
            raise MiError(400, "Bad parameter value", str(error)) from None
        expire = p.get("expire", 3600)
        if expire < 0:
            raise invalid("Negative expire value")
        if expire > 10 * 365 * 86400:
            raise bad_value("expire", "more than ten years")
        await self.hub.subscribe(socket, expire, event)
        return "OK"

    async def events_list(self, p: dict[str, Any]) -> Any:
        return {"Events": [{"name": name, "id": ident} for name, (ident, _) in EVENTS.items()]}

    def _subscribers(self, event: str) -> list[dict[str, Any]]:
        hooks = [w.to_mi() for w in self.webhooks.hooks] if event == EVENT_NAME else []
        return [s.to_mi() for s in self.hub.list(event)] + hooks

    def _event_entry(self, event: str) -> dict[str, Any]:
        return {"name": event, "id": EVENTS[event][0], "Subscribers": self._subscribers(event)}

    async def subscribers_list(self, p: dict[str, Any]) -> Any:
        if "event" not in p:
            entries = [self._event_entry(event) for event in EVENTS]
            return {"Events": [entry for entry in entries if entry["Subscribers"]]}
        event = p["event"]
        if event not in EVENTS:
            raise MiError(404, "Event not published")
        if "socket" not in p:
            return {"Event": self._event_entry(event)}
        wanted = p["socket"].strip()
        header = {"name": event, "id": EVENTS[event][0]}
        for sub in self._subscribers(event):
            if sub["socket"] == wanted:
                return {"Event": {**header, "Subscriber": sub}}
        try:
            normal = str(parse_event_socket(wanted))
        except ValueError:
            normal = None
        found = self.hub.find(normal, event) if normal else None
        if found is None:
            raise MiError(404, "Subscriber does not exist")
        return {"Event": {**header, "Subscriber": found.to_mi()}}

    # -- accounts --------------------------------------------------------------------------------

    async def registration_list(self, p: dict[str, Any]) -> Any:
        infos = [info.to_mi() for info in self.engine.registrations()]
        if "account" in p:
            found = [info for info in infos if info["account"] == p["account"]]
            if not found:
                raise MiError(404, "Account not found", f"no account {p['account'][:64]!r}")
            return found[0]
        return infos

    async def register(self, p: dict[str, Any]) -> str:
        await self.engine.register(p["account"])
        return "OK"

    async def unregister(self, p: dict[str, Any]) -> str:
        await self.engine.unregister(p["account"])
        return "OK"

    # -- core ------------------------------------------------------------------------------------

    async def which(self, p: dict[str, Any]) -> Any:
        if "command" not in p:
            return list(self.table)
        name = p["command"]
        if name.endswith(":"):  # OpenSIPS's module prefix: the commands under it
            found = [n for n in self.table if n.startswith(name)]
            if not found:
                raise MiError(404, "unknown MI command")
            return found
        command = self.table.get(name)
        if command is None:
            raise MiError(404, "unknown MI command")
        return [list(recipe) for recipe in command.signature.recipes()]

    async def version(self, p: dict[str, Any]) -> Any:
        python = f"python{sys.version_info.major}.{sys.version_info.minor}"
        system = platform.system().lower() or "unknown"
        return {"Server": f"UA Console ({product_version()} ({python}/{system}))"}

    async def uptime(self, p: dict[str, Any]) -> Any:
        now = time.time()
        since = self.engine.started_at or now
        return {
            "Now": time.ctime(now),
            "Up since": time.ctime(since),
            "Up time": f"{int(now - since)} [sec]",
        }

    async def ps(self, p: dict[str, Any]) -> Any:
        pid = os.getpid()
        processes = [{"ID": 0, "PID": pid, "Type": "attendant"}]
        for listener in self.engine.listeners:
            processes.append({"ID": len(processes), "PID": pid, "Type": f"SIP receiver {listener}"})
        http = self._describe_listener()
        if http:
            processes.append({"ID": len(processes), "PID": pid, "Type": f"HTTPD {http}"})
        return {"Processes": processes}
