"""A remote engine: the same session commands as :class:`Engine`, sent as MI commands over HTTP.

It drives another ``uaconsole serve`` or an OpenSIPS 3.4 server with ``b2b_entities`` and
``mi_http`` (MI-API.md is the contract both follow). Differences from the embedded Engine:

- ``sessions()`` and ``session(key)`` are coroutines (they ask the server).
- ``events()`` starts the event feed on first use: the WebSocket ``/events`` of a UA Console
  server (reconnecting with ``?since=`` the last seq seen, so nothing it still holds is lost;
  anything it cannot give arrives as a :class:`Gap`), or, for OpenSIPS, an ``event_subscribe``
  of a local UDP socket (``event_host``), renewed before it expires. OpenSIPS's events carry only
  its eight fields: ``seq`` is then counted here, ``time`` is the arrival time, the dialog
  identifiers are empty and ``origin`` is ``remote``.
- ``messages()`` never yields: SIP messages are not visible through MI.
- ``registrations()`` is a coroutine too (``ua_registration_list``); ``register`` and
  ``unregister`` are ``ua_register`` and ``ua_unregister``. A UA Console server's
  ``E_UA_REGISTRATION`` notifications arrive in the same stream as RegistrationEvent items;
  OpenSIPS has no accounts (its MI answers these commands with an error).

Refusals raise the same :class:`CommandError` as the Engine (code, message, detail from the
JSON-RPC error); an unreachable server raises :class:`RemoteUnavailable`.
"""

import asyncio
import contextlib
import itertools
import json
import logging
import ssl
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from engine.ua.errors import CommandError
from engine.ua.events import SessionEvent, SessionInfo, SessionState
from engine.ua.registration import RegistrationEvent, RegistrationInfo, RegistrationState

from .streams import Broadcast, Gap, Reader

log = logging.getLogger("uaconsole.remote")

EVENT_NAME = "E_UA_SESSION"
REGISTRATION_EVENT = "E_UA_REGISTRATION"


class RemoteUnavailable(Exception):
    """The server could not be reached, or did not answer JSON-RPC."""


def session_info_from_mi(data: dict[str, Any]) -> SessionInfo:
    """A ``ua_session_list`` object as a SessionInfo."""

    def pair(name: str, kind: type) -> dict[str, Any]:
        value = data.get(name) or {}
        return {k: kind(v) if kind is not list else list(v or []) for k, v in value.items()}

    return SessionInfo(
        key=str(data.get("key", "")),
        entity_type=str(data.get("entity_type", "")),
        state=SessionState(int(data.get("state", 0))),
        callid=str(data.get("callid", "")),
        from_=str(data.get("from", "")),
        from_uri=str(data.get("from_uri", "")),
        from_tag=str(data.get("from_tag", "")),
        to=str(data.get("to", "")),
        to_uri=str(data.get("to_uri", "")),
        to_tag=str(data.get("to_tag", "")),
        ruri=str(data.get("ruri", "")),
        cseq=pair("cseq", int),
        route_set=pair("route_set", list),
        contact=pair("contact", str),
        last_method=str(data.get("last_method", "")),
        last_reply_code=int(data.get("last_reply_code", 0) or 0),
        created=float(data.get("created", 0) or 0),
        flags=str(data.get("flags", "")),
    )


def session_event_from_params(params: dict[str, Any], seq: int | None = None) -> SessionEvent:
    """An ``E_UA_SESSION`` notification's params as a SessionEvent (at least OpenSIPS's 8)."""

    def text(name: str) -> str | None:
        value = params.get(name)
        return None if value in (None, "") else str(value)

    return SessionEvent(
        key=str(params.get("key", "")),
        event_type=str(params.get("event_type", "")),
        entity_type=str(params.get("entity_type", "")),
        status=int(params.get("status", 0) or 0),
        reason=text("reason"),
        method=str(params.get("method", "")),
        body=text("body"),
        headers=text("headers"),
        seq=int(params["seq"]) if "seq" in params else (seq or 0),
        time=float(params.get("time", time.time())),
        callid=str(params.get("callid", "")),
        from_tag=str(params.get("from_tag", "")),
        to_tag=str(params.get("to_tag", "")),
        origin=str(params.get("origin", "remote")),
    )


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def registration_info_from_mi(data: dict[str, Any]) -> RegistrationInfo:
    """A ``ua_registration_list`` object as a RegistrationInfo."""
    try:
        state = RegistrationState(str(data.get("state", "unregistered")))
    except ValueError:
        state = RegistrationState.UNREGISTERED
    public = data.get("public_address")
    return RegistrationInfo(
        account=str(data.get("account", "")),
        aor=str(data.get("aor", "")),
        registrar=str(data.get("registrar", "")),
        state=state,
        contact=str(data.get("contact", "")),
        expires=int(data.get("expires", 0) or 0),
        expires_at=_optional_float(data.get("expires_at")),
        last_status=int(data.get("last_status", 0) or 0),
        last_reason=str(data.get("last_reason", "") or ""),
        next_attempt=_optional_float(data.get("next_attempt")),
        public_address=None if public in (None, "") else str(public),
        failures=int(data.get("failures", 0) or 0),
    )


def registration_event_from_params(params: dict[str, Any], seq: int = 0) -> RegistrationEvent:
    """An ``E_UA_REGISTRATION`` notification's params as a RegistrationEvent."""
    return RegistrationEvent(
        account=str(params.get("account", "")),
        event_type=str(params.get("event_type", "")),
        status=int(params.get("status", 0) or 0),
        reason=str(params.get("reason", "") or ""),
        expires=int(params.get("expires", 0) or 0),
        aor=str(params.get("aor", "")),
        seq=int(params["seq"]) if "seq" in params else seq,
        time=float(params.get("time", time.time())),
        origin=str(params.get("origin", "remote")),
    )


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_data: Any) -> None:
        self.on_data = on_data

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_data(data)


class RemoteEngine:
    """An engine reached over MI. ``await start()`` before use, ``await stop()`` after."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8888/mi",
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        events: str = "auto",
        event_host: str = "127.0.0.1",
        event_port: int = 0,
        expire: int = 3600,
    ) -> None:
        if events not in ("auto", "websocket", "udp"):
            raise ValueError("events must be auto, websocket or udp")
        self.url = url
        self._token = token
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._events_mode = events
        self._event_host = event_host
        self._event_port = event_port
        self._expire = expire
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        self._events: Broadcast[SessionEvent | RegistrationEvent] = Broadcast()
        self._messages: Broadcast[Any] = Broadcast()
        self._feed: asyncio.Task[None] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_socket = ""
        self._local_seq = itertools.count(1)
        self.last_seq = 0
        #: ``version``'s Server string, once started.
        self.server = ""

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and check that the server answers (RemoteUnavailable if not)."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        self._session = aiohttp.ClientSession(headers=headers, timeout=self._timeout)
        try:
            version = await self.call("version")
        except BaseException:
            await self._session.close()
            self._session = None
            raise
        self.server = str(version.get("Server", "")) if isinstance(version, dict) else ""

    async def stop(self) -> None:
        """Stop the event feed (unsubscribing) and close the client; every reader ends."""
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._feed
            self._feed = None
        if self._udp is not None:
            with contextlib.suppress(Exception):
                await self.call("event_subscribe", [EVENT_NAME, self._udp_socket, 0])
            self._udp.close()
            self._udp = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._events.close()
        self._messages.close()

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._session is not None

    @property
    def is_uaconsole(self) -> bool:
        """True when the server is a UA Console engine (it has the WebSocket event stream)."""
        return self.server.startswith("UA Console")

    # -- JSON-RPC --------------------------------------------------------------------------------

    async def call(self, method: str, params: Any = None) -> Any:
        """One MI command's result; CommandError for a JSON-RPC error."""
        if self._session is None:
            raise RuntimeError("the remote engine is not started")
        document = {
            "jsonrpc": "2.0",
            "method": method,
            "params": params or {},
            "id": next(self._ids),
        }
        try:
            async with self._session.post(
                self.url, data=json.dumps(document), ssl=self._ssl,
                headers={"Content-Type": "application/json"},
            ) as response:  # fmt: skip
                text = await response.text()
                if response.status != 200:
                    raise RemoteUnavailable(f"{self.url}: HTTP {response.status}: {text.strip()}")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise RemoteUnavailable(f"{self.url}: {error or type(error).__name__}") from None
        try:
            answer = json.loads(text)
        except ValueError:
            raise RemoteUnavailable(f"{self.url}: the answer is not JSON") from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            data = error.get("data")
            raise CommandError(
                int(error.get("code", 500)),
                str(error.get("message", "")),
                "" if data is None else str(data),
            )
        if not isinstance(answer, dict) or "result" not in answer:
            raise RemoteUnavailable(f"{self.url}: not a JSON-RPC response")
        return answer["result"]

    # -- session commands ------------------------------------------------------------------------

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
        """Place a call (from ``account`` if named: a UA Console server only); the new
        session's key."""
        params = _named(
            ruri=ruri, to=to, proxy=proxy, body=body, content_type=content_type,
            extra_headers=extra_headers, flags=flags or None, socket=socket, account=account,
        )  # fmt: skip
        params["from"] = from_
        return str(await self.call("ua_session_client_start", params))

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
        await self.call(
            "ua_session_reply",
            _named(key=key, method=method, code=code, reason=reason, body=body,
                   content_type=content_type, extra_headers=extra_headers),
        )  # fmt: skip

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
        await self.call(
            "ua_session_update",
            _named(key=key, method=method, body=body, content_type=content_type,
                   extra_headers=extra_headers),
        )  # fmt: skip

    async def terminate(self, key: str, *, extra_headers: str | None = None) -> None:
        """End the session."""
        await self.call("ua_session_terminate", _named(key=key, extra_headers=extra_headers))

    async def sessions(self) -> list[SessionInfo]:
        """Every live session (a coroutine here, unlike Engine.sessions)."""
        result = await self.call("ua_session_list")
        return [session_info_from_mi(item) for item in result or []]

    async def session(self, key: str) -> SessionInfo:
        """One session (CommandError 404 or 400 when there is none)."""
        result = await self.call("ua_session_list", {"key": key})
        if isinstance(result, list):  # some servers answer a list of one
            if not result:
                raise CommandError(404, "Entity not found", f"no session {key}")
            result = result[0]
        return session_info_from_mi(result)

    # -- accounts --------------------------------------------------------------------------------

    async def registrations(self) -> list[RegistrationInfo]:
        """Every account's registration (``ua_registration_list``; a coroutine here)."""
        result = await self.call("ua_registration_list")
        if isinstance(result, dict):  # one account
            result = [result]
        return [registration_info_from_mi(item) for item in result or [] if isinstance(item, dict)]

    async def register(self, account: str) -> None:
        """Register (or refresh) ``account`` now (``ua_register``)."""
        await self.call("ua_register", {"account": account})

    async def unregister(self, account: str) -> None:
        """Remove ``account``'s binding now (``ua_unregister``)."""
        await self.call("ua_unregister", {"account": account})

    # -- streams ---------------------------------------------------------------------------------

    def events(self, maxsize: int = 10000) -> Reader[SessionEvent | RegistrationEvent]:
        """A new reader of every event (SessionEvent, and RegistrationEvent from a UA Console
        server) from now on; starts the feed on first use."""
        reader = self._events.reader(maxsize)
        if self._feed is None and self._session is not None:
            use_ws = self._events_mode == "websocket" or (
                self._events_mode == "auto" and self.is_uaconsole
            )
            runner = self._websocket_feed() if use_ws else self._udp_feed()
            self._feed = asyncio.create_task(runner, name="remote-events")
        return reader

    def messages(self, maxsize: int = 10000) -> Reader[Any]:
        """A reader that never yields (SIP messages are not visible over MI); ends on stop()."""
        return self._messages.reader(maxsize)

    def _publish(self, params: dict[str, Any]) -> None:
        event = session_event_from_params(params, next(self._local_seq))
        self.last_seq = max(self.last_seq, event.seq)
        self._events.publish(event)

    @property
    def events_url(self) -> str:
        """The WebSocket URL next to the MI URL (``/mi`` -> ``/events``)."""
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = parts.path.rsplit("/", 1)[0] + "/events"
        return urlunsplit((scheme, parts.netloc, path, "", ""))

    async def _websocket_feed(self) -> None:
        assert self._session is not None
        backoff = 0.5
        while True:
            url = self.events_url + (f"?since={self.last_seq}" if self.last_seq else "")
            try:
                async with self._session.ws_connect(url, ssl=self._ssl, heartbeat=30) as ws:
                    backoff = 0.5
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        self._on_notification(json.loads(message.data))
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
                log.info("event stream %s: %s; reconnecting in %.1f s", url, error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    def _on_notification(self, note: Any) -> None:
        if not isinstance(note, dict):
            return
        method, params = note.get("method"), note.get("params") or {}
        if method == EVENT_NAME:
            self._publish(params)
        elif method == REGISTRATION_EVENT:
            registration = registration_event_from_params(params, next(self._local_seq))
            self.last_seq = max(self.last_seq, registration.seq)
            self._events.publish(registration)
        elif method == "events_lost":
            self._events.publish(Gap(int(params.get("count", 0))))  # type: ignore[arg-type]
            self.last_seq = max(self.last_seq, int(params.get("last_seq", 0)))
        elif method == "events_reset":
            self.last_seq = 0

    async def _udp_feed(self) -> None:
        loop = asyncio.get_running_loop()

        def on_data(data: bytes) -> None:
            try:
                self._on_notification(json.loads(data.decode("utf-8")))
            except ValueError:
                log.warning("undecodable event datagram (%d bytes)", len(data))

        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(on_data), local_addr=(self._event_host, self._event_port)
        )
        self._udp = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self._udp_socket = f"udp:{host}:{port}"
        while True:
            try:
                await self.call("event_subscribe", [EVENT_NAME, self._udp_socket, self._expire])
                delay = max(self._expire - 60, self._expire / 2)
            except (CommandError, RemoteUnavailable) as error:
                log.warning("cannot subscribe %s to %s: %s", self._udp_socket, EVENT_NAME, error)
                delay = 5.0
            await asyncio.sleep(delay)


def _named(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
