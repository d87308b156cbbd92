"""What the console drives: the embedded engine (or, through the same face, a remote one).

A backend offers the session commands of ``engine.api.Engine`` (async), the event stream, the
message stream when it has one, a snapshot of a live session, and the accounts' registrations
(with commands to register and unregister). The console never holds an engine object anywhere
else.
"""

import asyncio
import contextlib
import random
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from engine.api import CommandError, Engine, EngineConfig, RegistrationInfo, SessionInfo


class Backend(Protocol):
    """The interface the console's hub and forms use."""

    #: Shown in the title and the status bar: "embedded engine", "remote http://...".
    description: str
    #: The listeners as text (``udp:127.0.0.1:5060``), empty when none are open.
    listeners: list[str]
    #: Why the engine could not start (a listener that cannot be opened...), else None.
    start_error: str | None

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def events(self) -> Any: ...
    def messages(self) -> Any | None: ...
    def session_info(self, key: str) -> SessionInfo | None: ...
    def sessions(self) -> list[SessionInfo]: ...
    def media_address(self) -> str: ...
    def rtp_port(self) -> int: ...
    def registrations(self) -> list[RegistrationInfo]: ...

    async def client_start(self, ruri: str, to: str, from_: str, **kwargs: Any) -> str: ...
    async def reply(self, key: str, method: str, code: int, reason: str, **kwargs: Any) -> None: ...
    async def update(self, key: str, method: str, **kwargs: Any) -> None: ...
    async def terminate(self, key: str, **kwargs: Any) -> None: ...
    async def register(self, account: str) -> None: ...
    async def unregister(self, account: str) -> None: ...


class EmbeddedBackend:
    """The engine running in this process, on this event loop."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.engine = Engine(config)
        self.description = "embedded engine"
        self.listeners: list[str] = []
        self.start_error: str | None = None
        self.started_at: float | None = None
        self._events = None
        self._messages = None

    async def start(self) -> None:
        """Open the listeners. A failure is kept in ``start_error``; it never raises."""
        # Readers first, so that nothing published during start is missed.
        self._events = self.engine.events(maxsize=200_000)
        self._messages = self.engine.messages(maxsize=400_000)
        try:
            listeners = await self.engine.start()
        except Exception as error:  # TransportError, OSError, bad TLS files: say it, go on
            self.start_error = str(error) or type(error).__name__
            self.listeners = []
            return
        self.start_error = None
        self.started_at = time.time()
        self.listeners = [str(listener) for listener in listeners]

    async def stop(self) -> None:
        """End every session and close the sockets."""
        if self.engine.running:
            await self.engine.stop(timeout=2.0)
        for reader in (self._events, self._messages):
            if reader is not None:
                reader.close()

    @property
    def running(self) -> bool:
        """True while the engine is listening."""
        return self.engine.running

    def events(self) -> Any:
        """The reader of SessionEvent (and Gap) items."""
        return self._events

    def messages(self) -> Any | None:
        """The reader of MessageRecord (and Gap) items."""
        return self._messages

    def session_info(self, key: str) -> SessionInfo | None:
        """The live session's snapshot, None when it has ended (or the engine is down)."""
        if not self.engine.running:
            return None
        try:
            return self.engine.session(key)
        except CommandError:
            return None

    def sessions(self) -> list[SessionInfo]:
        """Every live session."""
        return self.engine.sessions() if self.engine.running else []

    def media_address(self) -> str:
        """The address to write in SDP we generate."""
        if self.config.rtp_address:
            return self.config.rtp_address
        for listener in self.engine.listeners:
            if listener.host not in ("0.0.0.0", "::"):
                return listener.host
        return "127.0.0.1"

    def rtp_port(self) -> int:
        """An even port of the configured RTP range, for an SDP we generate."""
        first, last = self.config.rtp_ports
        first += first % 2
        return random.randrange(first, max(first, last - 1) + 1, 2)

    def _check_running(self) -> None:
        if not self.engine.running:
            why = f" ({self.start_error})" if self.start_error else ""
            raise CommandError(
                503,
                "The engine is not running",
                f"it could not open its listeners{why}; change them in Settings",
            )

    async def client_start(self, ruri: str, to: str, from_: str, **kwargs: Any) -> str:
        """Place a call (``Engine.client_start``)."""
        self._check_running()
        return await self.engine.client_start(ruri, to, from_, **kwargs)

    async def reply(self, key: str, method: str, code: int, reason: str, **kwargs: Any) -> None:
        """Answer a pending request (``Engine.reply``)."""
        self._check_running()
        await self.engine.reply(key, method, code, reason, **kwargs)

    async def update(self, key: str, method: str, **kwargs: Any) -> None:
        """Send a request in a session (``Engine.update``)."""
        self._check_running()
        await self.engine.update(key, method, **kwargs)

    async def terminate(self, key: str, **kwargs: Any) -> None:
        """End a session (``Engine.terminate``)."""
        self._check_running()
        await self.engine.terminate(key, **kwargs)

    def registrations(self) -> list[RegistrationInfo]:
        """Every account's registration, now (empty while the engine is down)."""
        return self.engine.registrations() if self.engine.running else []

    async def register(self, account: str) -> None:
        """Register ``account`` now (``Engine.register``)."""
        self._check_running()
        await self.engine.register(account)

    async def unregister(self, account: str) -> None:
        """Remove ``account``'s binding now (``Engine.unregister``)."""
        self._check_running()
        await self.engine.unregister(account)


class RemoteBackend:
    """Another ``uaconsole serve`` or an OpenSIPS 3.4 server, driven over MI (engine.api.remote).

    Events come from the server's stream; SIP messages are not visible over MI, so the ladder
    and SDP tabs stay empty for its sessions. Session snapshots are refreshed from
    ``ua_session_list`` at start, after every gap in the event stream (a reconnect), and every
    few seconds; ``session_info`` answers from that copy. Registrations likewise: fetched with
    ``ua_registration_list`` at start, every few seconds, after each registration event and
    after each command, and handed to ``on_registrations``; OpenSIPS has none.
    """

    RESYNC_INTERVAL = 5.0

    def __init__(self, url: str, *, token: str | None = None) -> None:
        from engine.api.remote import RemoteEngine

        self.url = url
        self.engine = RemoteEngine(url, token=token)
        self.description = f"remote engine {url}"
        self.listeners: list[str] = []
        self.start_error: str | None = None
        self._events: Any = None
        self._infos: dict[str, SessionInfo] = {}
        self._resync_task: asyncio.Task[None] | None = None
        #: Called with the list of live sessions after each resynchronisation.
        self.on_resync: Any = None
        self.resyncs = 0
        self._registrations: list[RegistrationInfo] = []
        #: False once the server said it has no accounts (OpenSIPS).
        self.has_accounts = True
        self._fetching: asyncio.Task[None] | None = None
        self._fetch_again = False
        #: Called with the accounts' registrations after each fetch.
        self.on_registrations: Any = None

    async def start(self) -> None:
        """Connect; a failure is kept in ``start_error``."""
        try:
            await self.engine.start()
        except Exception as error:
            self.start_error = f"cannot reach {self.url}: {error}"
            return
        self.start_error = None
        server = self.engine.server or "MI server"
        self.description = f"{server} at {self.url}"
        self.listeners = [self.url]
        self._events = self.engine.events(maxsize=200_000)
        await self.resync()
        await self.fetch_registrations()
        self._resync_task = asyncio.ensure_future(self._resync_loop())

    async def stop(self) -> None:
        """Disconnect (the remote engine and its calls go on)."""
        for task in (self._resync_task, self._fetching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.engine.running:
            await self.engine.stop()

    @property
    def running(self) -> bool:
        """True while connected."""
        return self.engine.running

    def events(self) -> Any:
        """The reader of the server's events (Gap after a reconnect that lost some)."""
        return self._events

    def messages(self) -> Any | None:
        """None: SIP messages are not visible over MI."""
        return None

    async def resync(self) -> None:
        """Refresh the snapshots from ``ua_session_list``."""
        try:
            infos = await self.engine.sessions()
        except Exception as error:  # unreachable for now: the event feed reconnects by itself
            self.start_error = None if self.engine.running else str(error)
            return
        self._infos = {info.key: info for info in infos}
        self.resyncs += 1
        if self.on_resync is not None:
            self.on_resync(infos)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.RESYNC_INTERVAL)
            await self.resync()
            self.refresh_registrations()

    def registrations(self) -> list[RegistrationInfo]:
        """The last registrations fetched."""
        return list(self._registrations)

    def refresh_registrations(self) -> None:
        """Fetch the registrations soon (once more after the fetch under way, if one is)."""
        if not self.has_accounts or not self.engine.running:
            return
        if self._fetching is not None and not self._fetching.done():
            self._fetch_again = True
            return
        self._fetching = asyncio.ensure_future(self._fetch_until_current())

    async def _fetch_until_current(self) -> None:
        self._fetch_again = True
        while self._fetch_again:
            self._fetch_again = False
            await self.fetch_registrations()

    async def fetch_registrations(self) -> None:
        """``ua_registration_list`` now; the answer goes to ``on_registrations``."""
        if not self.has_accounts:
            return
        try:
            infos = await self.engine.registrations()
        except CommandError:  # no such command: an OpenSIPS server, or an older engine
            self.has_accounts = False
            infos = []
        except Exception:  # unreachable for now: the next fetch will tell
            return
        self._registrations = infos
        if self.on_registrations is not None:
            self.on_registrations(infos)

    async def register(self, account: str) -> None:
        """``ua_register``."""
        await self.engine.register(account)
        self.refresh_registrations()

    async def unregister(self, account: str) -> None:
        """``ua_unregister``."""
        await self.engine.unregister(account)
        self.refresh_registrations()

    def session_info(self, key: str) -> SessionInfo | None:
        """The last snapshot of a session."""
        return self._infos.get(key)

    def sessions(self) -> list[SessionInfo]:
        """The last snapshots."""
        return list(self._infos.values())

    def media_address(self) -> str:
        """The server's host, for SDP we generate (its media address is not visible)."""
        host = urlsplit(self.url).hostname or "127.0.0.1"
        return host

    def rtp_port(self) -> int:
        """An even port in the usual range."""
        return random.randrange(20000, 29999, 2)

    async def client_start(self, ruri: str, to: str, from_: str, **kwargs: Any) -> str:
        """``ua_session_client_start``."""
        key = await self.engine.client_start(ruri, to, from_, **kwargs)
        return str(key)

    async def reply(self, key: str, method: str, code: int, reason: str, **kwargs: Any) -> None:
        """``ua_session_reply``."""
        await self.engine.reply(key, method, code, reason, **kwargs)

    async def update(self, key: str, method: str, **kwargs: Any) -> None:
        """``ua_session_update``."""
        await self.engine.update(key, method, **kwargs)

    async def terminate(self, key: str, **kwargs: Any) -> None:
        """``ua_session_terminate``."""
        await self.engine.terminate(key, **kwargs)
