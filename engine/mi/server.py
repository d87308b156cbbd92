"""The control API's HTTP server: ``POST /mi`` (JSON-RPC 2.0) and ``GET /events`` (WebSocket).

HTTP rules (MI-API.md section 2): results and JSON-RPC errors come back with 200; a request
without ``id`` (a notification) is run and answered 202 with no body; other methods on ``/mi``
get 405. The body must be ``application/json`` (415 otherwise) and at most
``max_request_bytes`` (413). A body that is empty or not JSON is a -32700 parse error with
``id`` null. A batch (an array) runs its requests in order and answers the array of their
responses (notifications leave none); an empty batch is -32600.
"""

import asyncio
import json
import logging
import math
import ssl
from typing import Any

from aiohttp import web

from engine.api.engine import Engine

from .commands import Commands
from .config import MiConfig
from .params import MiError
from .replay import HISTORY, RING, EventRing, History, events_handler
from .security import Guard
from .subscribers import SubscriberHub
from .webhooks import Webhooks

log = logging.getLogger("uaconsole.mi")

_NO_ID = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _error(request_id: Any, error: MiError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


class JsonRpc:
    """JSON-RPC 2.0 framing around the commands."""

    def __init__(self, commands: Commands, max_batch: int) -> None:
        self.commands = commands
        self.max_batch = max_batch

    async def handle(self, body: bytes) -> Any:
        """The response document for ``body``; None when nothing is to be answered."""
        try:
            if not body.strip():
                raise ValueError("empty body")
            document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, RecursionError) as error:
            return _error(None, MiError(-32700, "Parse error", str(error)[:200]))
        if isinstance(document, list):
            if not document:
                return _error(None, MiError(-32600, "Invalid Request", "empty batch"))
            if len(document) > self.max_batch:
                return _error(
                    None,
                    MiError(
                        -32600,
                        "Invalid Request",
                        f"a batch of {len(document)} requests; at most {self.max_batch}",
                    ),
                )
            responses = [r for r in [await self.handle_one(item) for item in document] if r]
            return responses or None
        return await self.handle_one(document)

    async def handle_one(self, request: Any) -> dict[str, Any] | None:
        """The response to one request object; None for a notification."""
        if not isinstance(request, dict):
            return _error(None, MiError(-32600, "Invalid Request", "not a JSON-RPC request object"))
        request_id = request.get("id", _NO_ID)
        if request_id is not _NO_ID and (
            isinstance(request_id, bool)
            or not isinstance(request_id, str | int | float | None)
            or (isinstance(request_id, float) and not math.isfinite(request_id))
            or (isinstance(request_id, str) and len(request_id) > 256)
        ):
            return _error(
                None, MiError(-32600, "Invalid Request", "id must be a short string or a number")
            )
        answer_id = None if request_id is _NO_ID else request_id
        if request.get("jsonrpc") != "2.0":
            return _error(answer_id, MiError(-32600, "Invalid Request", 'jsonrpc must be "2.0"'))
        method = request.get("method")
        if not isinstance(method, str):
            return _error(answer_id, MiError(-32600, "Invalid Request", "method must be a string"))
        params = request.get("params")
        if "params" in request and not isinstance(params, dict | list):
            return _error(
                answer_id, MiError(-32600, "Invalid Request", "params must be an object or array")
            )
        try:
            result = await self.commands.call(method, params)
            response: dict[str, Any] = {"jsonrpc": "2.0", "result": result, "id": answer_id}
        except MiError as error:
            response = _error(answer_id, error)
        except Exception:
            log.exception("MI command %s failed", method[:64])
            response = _error(answer_id, MiError(-32603, "Internal error"))
        return None if request_id is _NO_ID else response


class MiServer:
    """The control API of one engine. ``start`` inside the engine's event loop."""

    def __init__(self, engine: Engine, config: MiConfig, history: History | None = None) -> None:
        self.engine = engine
        self.config = config
        #: Older events than the ring holds, for ``/events?since=`` (the SQLite log).
        self.history = history
        self.hub = SubscriberHub(engine, config.subscriber_queue)
        self.webhooks = Webhooks(engine, config.webhooks)
        # The ring reads events from now on: create it before any traffic.
        self.ring = EventRing(engine, config.event_buffer)
        self.guard = Guard(config)
        self.commands = Commands(
            engine, config, self.hub, self.webhooks, describe_listener=lambda: self.address
        )
        self.rpc = JsonRpc(self.commands, config.max_batch)
        self._runner: web.AppRunner | None = None
        self.port = config.port

    @property
    def address(self) -> str:
        """``127.0.0.1:8888`` as bound."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The JSON-RPC endpoint, e.g. ``http://127.0.0.1:8888/mi``."""
        return f"{self.config.scheme}://{self.address}/mi"

    @property
    def events_url(self) -> str:
        """The WebSocket endpoint."""
        scheme = "wss" if self.config.tls_certificate else "ws"
        return f"{scheme}://{self.address}/events"

    async def start(self) -> None:
        """Bind and serve; OSError if the address cannot be bound, ConfigError if unsafe."""
        self.config.check()
        app = web.Application(
            middlewares=[self.guard.middleware], client_max_size=self.config.max_request_bytes
        )
        app[RING] = self.ring
        app[HISTORY] = self.history
        app.router.add_post("/mi", self._handle_mi)
        app.router.add_get("/events", events_handler, allow_head=False)
        context = None
        if self.config.tls_certificate and self.config.tls_key:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.config.tls_certificate, self.config.tls_key)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(
            runner, self.config.host, self.config.port, ssl_context=context, reuse_address=True
        )
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        self.guard.port = self.port
        self.ring.start()
        self.webhooks.start()
        log.info("control API listening on %s (events: %s)", self.url, self.events_url)

    async def stop(self) -> None:
        """Stop serving, end subscriptions and webhooks."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.hub.stop()
        await self.webhooks.stop()
        await self.ring.stop()

    async def _handle_mi(self, request: web.Request) -> web.Response:
        if request.content_type not in ("application/json", "application/json-rpc"):
            raise web.HTTPUnsupportedMediaType(
                text=f"415 Unsupported Media Type: send Content-Type: application/json, "
                f"not {request.content_type!r}\n"
            )
        length = request.content_length
        if length is not None and length > self.config.max_request_bytes:
            raise web.HTTPRequestEntityTooLarge(
                max_size=self.config.max_request_bytes, actual_size=length
            )
        body = await request.read()
        answer = await self.rpc.handle(body)
        if answer is None:
            return web.Response(status=202)
        return web.Response(text=json.dumps(answer), content_type="application/json")


async def start_mi_server(
    engine: Engine, config: MiConfig, history: History | None = None
) -> MiServer | None:
    """Start the control API if enabled (None when disabled). ``history(first, last)``, when
    given, supplies events older than the replay ring (e.g. from the SQLite log)."""
    if not config.enabled:
        return None
    server = MiServer(engine, config, history)
    await server.start()
    return server


async def stop_mi_server(server: MiServer | None) -> None:
    """Stop it if it runs."""
    if server is not None:
        await asyncio.shield(server.stop())
