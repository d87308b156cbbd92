"""The Engine: the pure UA core on asyncio sockets, with event and message streams.

The adapter is thin (ARCHITECTURE.md, "The pure core"): every input (a message from the
transport, a timer, a command) is handed to the core with the current time; then whatever the
core queued is sent, its events are published, its notices logged, and one ``loop.call_at`` is
re-armed for the core's next deadline.
"""

import asyncio
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass

from engine.sip import Target
from engine.sip.ids import IdFactory
from engine.transport.base import Listener, TraceRecord
from engine.transport.manager import SipTransport
from engine.ua.config import UaConfig
from engine.ua.core import UserAgent
from engine.ua.events import SessionEvent, SessionInfo
from engine.ua.registration import RegistrationEvent, RegistrationInfo

from .config import EngineConfig
from .streams import Broadcast, Reader

log = logging.getLogger("uaconsole.engine")


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A SIP message sent or received (for the ladder view, the log and exports)."""

    #: Unix time.
    time: float
    #: "in" or "out".
    direction: str
    #: "udp", "tcp" or "tls".
    transport: str
    local: str
    remote: str
    #: The message exactly as on the wire.
    data: bytes

    @property
    def first_line(self) -> str:
        """The start line, decoded."""
        return self.data.split(b"\r\n", 1)[0].decode("utf-8", "replace")


class SystemRandomness:
    """Hex tokens from the operating system's randomness, drawn a few kilobytes at a time:
    one ``os.urandom`` call per token cost more than the rest of making it (a busy engine takes
    five or six tokens per call)."""

    def __init__(self, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._pool = b""
        self._used = 0

    def __call__(self, nbytes: int) -> str:
        start, end = self._used, self._used + nbytes
        if end > len(self._pool):
            self._pool = os.urandom(max(self._chunk, nbytes))
            start, end = 0, nbytes
        self._used = end
        return self._pool[start:end].hex()


def system_ids() -> IdFactory:
    """Identifiers from the operating system's randomness."""
    return IdFactory(SystemRandomness())


class Engine:
    """A SIP user agent driven by session commands. ``start`` it inside a running event loop."""

    def __init__(self, config: EngineConfig, ids: IdFactory | None = None) -> None:
        self.config = config
        self._ids = ids or system_ids()
        self._core: UserAgent | None = None
        self._transport: SipTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._activity = 0
        self._events: Broadcast[SessionEvent | RegistrationEvent] = Broadcast()
        self._messages: Broadcast[MessageRecord] = Broadcast()
        self.started_at: float | None = None

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> list[Listener]:
        """Open the listeners; TransportError (one line) if one cannot be opened."""
        config = self.config
        tls_server = tls_client = None
        if config.tls_certificate and config.tls_key:
            tls_server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_server.load_cert_chain(config.tls_certificate, config.tls_key)
        tls_client = ssl.create_default_context()
        if not config.tls_verify:
            tls_client.check_hostname = False
            tls_client.verify_mode = ssl.CERT_NONE
        transport = SipTransport(
            self._on_message,
            tls_server=tls_server,
            tls_client=tls_client,
            on_trace=self._on_trace,
            on_error=self._on_send_error,
        )
        self._loop = asyncio.get_running_loop()
        listeners = await transport.start(config.listen)
        self._transport = transport
        local = tuple(Target(li.transport, _advertised(li.host), li.port) for li in listeners)
        self._core = UserAgent(
            UaConfig(
                local=local,
                policy=config.incoming,
                credentials=config.credentials,
                advertised_contact=config.advertised_contact,
                timers=config.timers,
                key_prefix=config.key_prefix,
                default_max_duration=config.max_duration,
                user_agent=config.user_agent,
                rtp_address=config.rtp_address,
                rtp_ports=config.rtp_ports,
                accounts=config.accounts,
                untrusted=config.untrusted,
                trusted_networks=config.trusted,
            ),
            self._ids,
        )
        self._core.start_registrations(time.time())
        self._flush()
        self.started_at = time.time()
        for listener in listeners:
            log.info("listening on %s", listener)
        return listeners

    async def stop(self, timeout: float = 5.0) -> None:
        """End every session properly, wait (at most ``timeout`` s) for the transactions to
        finish, then close the sockets and end every stream."""
        core = self._core
        if core is not None:
            core.shutdown(time.time())
            self._flush()
            deadline = time.monotonic() + timeout
            while (core.txn.awaiting_responses() or len(core)) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if core.txn.awaiting_responses():
                log.info("stopped with %d requests unanswered", core.txn.awaiting_responses())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            await self._transport.stop()
        self._core = None
        self._events.close()
        self._messages.close()

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._core is not None

    @property
    def activity(self) -> int:
        """A number that changes whenever the engine handles a message or a command."""
        return self._activity

    @property
    def listeners(self) -> list[Listener]:
        """The open listeners (ports as bound)."""
        return self._transport.listeners if self._transport else []

    # -- streams ---------------------------------------------------------------------------------

    def events(self, maxsize: int = 10000) -> Reader[SessionEvent | RegistrationEvent]:
        """A new reader of every event from now on: SessionEvent, and RegistrationEvent for
        accounts (one numbering), with Gap markers if it lags."""
        return self._events.reader(maxsize)

    def messages(self, maxsize: int = 10000) -> Reader[MessageRecord]:
        """A new reader of every SIP message sent or received from now on."""
        return self._messages.reader(maxsize)

    # -- session commands (CommandError from engine.ua.errors when refused) ----------------------

    async def client_start(
        self,
        ruri: str,
        to: str,
        from_: str,
        *,
        proxy: str | None = None,
        body: str | None = None,
        content_type: str | None = None,
        extra_headers: str | None = None,
        flags: str = "",
        socket: str | None = None,
        account: str | None = None,
    ) -> str:
        """Place a call (from ``account``'s identity, proxy and credentials if named); the new
        session's key."""
        try:
            return self._ua.client_start(
                ruri, to, from_, time.time(), proxy=proxy, body=body, content_type=content_type,
                extra_headers=extra_headers, flags=flags, socket=socket, account=account,
            )  # fmt: skip
        finally:
            self._flush()

    async def reply(
        self,
        key: str,
        method: str,
        code: int,
        reason: str,
        *,
        body: str | None = None,
        content_type: str | None = None,
        extra_headers: str | None = None,
    ) -> None:
        """Answer the pending request of ``method``."""
        try:
            self._ua.reply(
                key, method, code, reason, time.time(), body=body, content_type=content_type,
                extra_headers=extra_headers,
            )  # fmt: skip
        finally:
            self._flush()

    async def update(
        self,
        key: str,
        method: str,
        *,
        body: str | None = None,
        content_type: str | None = None,
        extra_headers: str | None = None,
    ) -> None:
        """Send a request in the session."""
        try:
            self._ua.update(
                key, method, time.time(), body=body, content_type=content_type,
                extra_headers=extra_headers,
            )  # fmt: skip
        finally:
            self._flush()

    async def terminate(self, key: str, *, extra_headers: str | None = None) -> None:
        """End the session (BYE, CANCEL or a final reply, as its state needs)."""
        try:
            self._ua.terminate(key, time.time(), extra_headers=extra_headers)
        finally:
            self._flush()

    async def register(self, account: str) -> None:
        """Register (or refresh) ``account`` now."""
        try:
            self._ua.register(account, time.time())
        finally:
            self._flush()

    async def unregister(self, account: str) -> None:
        """Remove ``account``'s binding now."""
        try:
            self._ua.unregister(account, time.time())
        finally:
            self._flush()

    def registrations(self) -> list[RegistrationInfo]:
        """Every account's registration."""
        return self._ua.registrations()

    def sessions(self) -> list[SessionInfo]:
        """Every live session."""
        return self._ua.sessions()

    def session(self, key: str) -> SessionInfo:
        """One session (CommandError 404 or 400 when there is none)."""
        return self._ua.session(key)

    # -- the adapter -----------------------------------------------------------------------------

    @property
    def _ua(self) -> UserAgent:
        if self._core is None:
            raise RuntimeError("the engine is not running")
        return self._core

    def _on_message(self, data: bytes, source: Target, listener: Listener) -> None:
        core = self._core
        if core is None:
            return
        core.receive(data, source, time.time())
        self._flush()

    def _on_trace(self, record: TraceRecord) -> None:
        if not self._messages.reader_count:
            return  # nobody reads the messages: do not build records for them
        local = Target(record.transport, record.local_host, record.local_port)
        remote = Target(record.transport, record.remote_host, record.remote_port)
        self._messages.publish(
            MessageRecord(
                record.time,
                record.direction,
                record.transport,
                str(local),
                str(remote),
                record.data,
            )
        )

    def _on_send_error(self, target: Target, message: str) -> None:
        log.warning("could not send to %s: %s", target, message)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        core = self._core
        if core is None:
            return
        core.handle_timer(time.time())
        self._flush()

    def _flush(self) -> None:
        self._activity += 1
        core = self._core
        transport = self._transport
        if core is None or transport is None:
            return
        for out in core.datagrams_to_send():
            transport.send(out.data, out.target)
        while (event := core.next_event()) is not None:
            self._events.publish(event)
        while (notice := core.next_notice()) is not None:
            log.log(logging.getLevelName(notice.level.upper()), "%s", notice.message)
        deadline = core.get_timer()
        if deadline == self._timer_deadline and self._timer is not None:
            return  # armed for this deadline already: most messages do not move it
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None and self._loop is not None:
            # the loop the engine started on: the console's qasync loop may be between runs
            delay = max(0.0, deadline - time.time())
            self._timer = self._loop.call_at(self._loop.time() + delay, self._on_timer)


def _advertised(host: str) -> str:
    """The address to write in Via and Contact for a listener bound to ``host``."""
    if host in ("0.0.0.0", "::"):
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"
    return host
