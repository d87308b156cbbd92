"""Event delivery: udp: and tcp: subscribers, the WebSocket stream with replay, webhooks."""

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from engine.api.engine import Engine
from engine.mi.config import WebhookConfig
from engine.mi.replay import EventRing, _Client
from engine.mi.server import MiServer
from engine.ua.events import SessionEvent

from .conftest import HOST, WAIT, MakeMi, Rpc, Sink, mi_config, next_event


async def make_events(rpc: Rpc, sink: Sink, engine: Engine, count: int) -> list[SessionEvent]:
    """``count`` calls to the silent peer, each ended at once: one TERMINATED event each."""
    reader = engine.events()
    for _ in range(count):
        key = await rpc(
            "ua_session_client_start",
            {"ruri": f"sip:bob@{HOST}:{sink.port}", "to": "sip:b@x", "from": "sip:a@x"},
        )
        await sink.get()
        await rpc("ua_session_terminate", {"key": key})
    events = [await next_event(reader) for _ in range(count)]
    reader.close()
    return events


class UdpInbox:
    """A UDP socket collecting datagrams."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> "UdpInbox":
        queue = self.queue

        class P(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                queue.put_nowait(data)

        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(P, local_addr=(HOST, 0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.transport is not None
        self.transport.close()

    @property
    def socket(self) -> str:
        assert self.transport is not None
        return f"udp:{HOST}:{self.transport.get_extra_info('sockname')[1]}"

    async def get(self, timeout: float = WAIT) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.queue.get(), timeout))


# -- udp -------------------------------------------------------------------------------------------


async def test_udp_subscriber_gets_one_notification_per_datagram(
    rpc: Rpc, sink: Sink, engine: Engine
) -> None:
    async with UdpInbox() as inbox:
        assert await rpc("event_subscribe", ["E_UA_SESSION", inbox.socket]) == "OK"
        events = await make_events(rpc, sink, engine, 3)
        got = [await inbox.get() for _ in events]
        assert [n["params"]["seq"] for n in got] == [e.seq for e in events]
        assert all(n["method"] == "E_UA_SESSION" and n["jsonrpc"] == "2.0" for n in got)
        assert got[0]["params"] == events[0].params()
        listed = await rpc("subscribers_list", ["E_UA_SESSION", inbox.socket])
        assert listed["Event"]["Subscriber"]["delivered"] == 3


async def test_udp_subscription_expires(rpc: Rpc, sink: Sink, engine: Engine) -> None:
    async with UdpInbox() as inbox:
        await rpc("event_subscribe", {"event": "E_UA_SESSION", "socket": inbox.socket, "expire": 1})
        await asyncio.sleep(1.2)
        assert await rpc("subscribers_list") == {"Events": []}
        await make_events(rpc, sink, engine, 1)
        with pytest.raises(TimeoutError):
            await inbox.get(timeout=0.3)


async def test_udp_subscription_is_renewed_by_subscribing_again(
    rpc: Rpc, sink: Sink, engine: Engine
) -> None:
    async with UdpInbox() as inbox:
        await rpc("event_subscribe", ["E_UA_SESSION", inbox.socket, 1])
        await asyncio.sleep(0.5)
        await rpc("event_subscribe", ["E_UA_SESSION", inbox.socket, 60])
        await asyncio.sleep(0.8)
        listed = await rpc("subscribers_list")
        assert listed["Events"][0]["Subscribers"][0]["expire"] == 60
        await make_events(rpc, sink, engine, 1)
        assert (await inbox.get())["method"] == "E_UA_SESSION"


async def test_expire_zero_unsubscribes(rpc: Rpc, sink: Sink, engine: Engine) -> None:
    async with UdpInbox() as inbox:
        await rpc("event_subscribe", ["E_UA_SESSION", inbox.socket])
        await rpc("event_subscribe", ["E_UA_SESSION", inbox.socket, 0])
        await make_events(rpc, sink, engine, 1)
        with pytest.raises(TimeoutError):
            await inbox.get(timeout=0.3)


# -- tcp -------------------------------------------------------------------------------------------


class StreamListener:
    """A TCP listener of our own that reads a persistent stream of back-to-back JSON documents."""

    def __init__(self) -> None:
        self.connections = 0
        self.buffer = ""
        self.documents: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.raw = ""

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, HOST, port)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        decoder = json.JSONDecoder()
        while data := await reader.read(65536):
            text = data.decode()
            self.raw += text
            self.buffer += text
            while self.buffer:
                try:
                    doc, end = decoder.raw_decode(self.buffer)
                except ValueError:
                    break
                self.buffer = self.buffer[end:]
                self.documents.put_nowait(doc)
        writer.close()

    async def get(self, timeout: float = WAIT) -> dict[str, Any]:
        return await asyncio.wait_for(self.documents.get(), timeout)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)


@pytest.fixture
async def stream_listener() -> AsyncIterator[StreamListener]:
    listener = StreamListener()
    yield listener
    await listener.close()


async def test_tcp_subscriber_writes_a_persistent_stream(
    rpc: Rpc, sink: Sink, engine: Engine, stream_listener: StreamListener
) -> None:
    port = await stream_listener.start()
    await rpc("event_subscribe", ["E_UA_SESSION", f"tcp:{HOST}:{port}"])
    events = await make_events(rpc, sink, engine, 4)
    got = [await stream_listener.get() for _ in events]
    assert [d["params"]["seq"] for d in got] == [e.seq for e in events]
    assert all(d["method"] == "E_UA_SESSION" for d in got)
    assert stream_listener.connections == 1
    assert stream_listener.raw.count("}{") == 3  # back to back, no delimiter


async def test_tcp_subscriber_method_suffix(
    rpc: Rpc, sink: Sink, engine: Engine, stream_listener: StreamListener
) -> None:
    port = await stream_listener.start()
    await rpc("event_subscribe", ["E_UA_SESSION", f"tcp:{HOST}:{port}/ua_event"])
    await make_events(rpc, sink, engine, 1)
    assert (await stream_listener.get())["method"] == "ua_event"
    listed = await rpc("subscribers_list")
    assert listed["Events"][0]["Subscribers"][0]["socket"] == f"tcp:{HOST}:{port}/ua_event"


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def test_unreachable_tcp_subscriber_is_retried_and_never_blocks(
    rpc: Rpc, sink: Sink, engine: Engine, stream_listener: StreamListener
) -> None:
    port = _free_tcp_port()
    await rpc("event_subscribe", ["E_UA_SESSION", f"tcp:{HOST}:{port}"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await make_events(rpc, sink, engine, 3)  # the engine goes on meanwhile
    assert loop.time() - started < 2.0
    await asyncio.sleep(0.6)  # at least one refused attempt
    await stream_listener.start(port)
    got = [await stream_listener.get(timeout=5) for _ in events]
    assert [d["params"]["seq"] for d in got] == [e.seq for e in events]


async def test_tcp_subscriber_losses_are_counted(
    make_mi: MakeMi, sink: Sink, engine: Engine, stream_listener: StreamListener,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    _, rpc = await make_mi(subscriber_queue=2)
    port = _free_tcp_port()
    await rpc("event_subscribe", ["E_UA_SESSION", f"tcp:{HOST}:{port}"])
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="uaconsole.mi"):
        events = await make_events(rpc, sink, engine, 5)
        await stream_listener.start(port)
        got = [await stream_listener.get(timeout=5) for _ in range(2)]
        assert [d["params"]["seq"] for d in got] == [e.seq for e in events[-2:]]
        listed = await rpc("subscribers_list")
        subscriber = listed["Events"][0]["Subscribers"][0]
        assert (subscriber["lost"], subscriber["delivered"]) == (3, 2)
    assert "3 event(s) lost" in caplog.text


async def test_tcp_subscription_expires_while_unreachable(rpc: Rpc) -> None:
    port = _free_tcp_port()
    await rpc("event_subscribe", ["E_UA_SESSION", f"tcp:{HOST}:{port}", 1])
    await asyncio.sleep(1.2)
    assert await rpc("subscribers_list") == {"Events": []}


# -- websocket -------------------------------------------------------------------------------------


async def ws_read(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        message = await asyncio.wait_for(ws.receive(), WAIT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        out.append(json.loads(message.data))
    return out


async def test_websocket_streams_events_in_order(
    mi: tuple[MiServer, Rpc], sink: Sink, engine: Engine
) -> None:
    server, rpc = mi
    async with rpc.session.ws_connect(server.events_url) as ws:
        events = await make_events(rpc, sink, engine, 3)
        got = await ws_read(ws, 3)
    assert [n["params"]["seq"] for n in got] == [e.seq for e in events]
    assert got[0] == {"jsonrpc": "2.0", "method": "E_UA_SESSION", "params": events[0].params()}


async def test_websocket_since_replays_what_is_held(
    mi: tuple[MiServer, Rpc], sink: Sink, engine: Engine
) -> None:
    server, rpc = mi
    events = await make_events(rpc, sink, engine, 3)
    await asyncio.sleep(0.05)
    async with rpc.session.ws_connect(f"{server.events_url}?since={events[0].seq}") as ws:
        replayed = await ws_read(ws, 2)
        more = await make_events(rpc, sink, engine, 1)
        live = await ws_read(ws, 1)
    assert [n["params"]["seq"] for n in replayed] == [e.seq for e in events[1:]]
    assert live[0]["params"]["seq"] == more[0].seq


async def test_websocket_is_told_of_events_no_longer_held(
    make_mi: MakeMi, sink: Sink, engine: Engine
) -> None:
    server, rpc = await make_mi(event_buffer=2)
    events = await make_events(rpc, sink, engine, 4)
    await asyncio.sleep(0.05)
    async with rpc.session.ws_connect(f"{server.events_url}?since=0") as ws:
        got = await ws_read(ws, 3)
    first = events[0].seq
    assert got[0] == {
        "jsonrpc": "2.0",
        "method": "events_lost",
        "params": {"first_seq": 1, "last_seq": first + 1, "count": first + 1, "reason": "expired"},
    }
    assert [n["params"]["seq"] for n in got[1:]] == [events[2].seq, events[3].seq]


async def test_websocket_since_beyond_the_newest_event_is_a_reset(
    mi: tuple[MiServer, Rpc], sink: Sink, engine: Engine
) -> None:
    server, rpc = mi
    events = await make_events(rpc, sink, engine, 1)
    await asyncio.sleep(0.05)
    async with rpc.session.ws_connect(f"{server.events_url}?since=999999") as ws:
        got = await ws_read(ws, 2)
    assert got[0]["method"] == "events_reset"
    assert got[0]["params"] == {"since": 999999, "latest": events[0].seq}
    assert got[1]["params"]["seq"] == events[0].seq


@pytest.mark.parametrize("since", ["-1", "abc", "1e3", "9" * 30])
async def test_websocket_bad_since_400(mi: tuple[MiServer, Rpc], since: str) -> None:
    server, rpc = mi
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await rpc.session.ws_connect(f"{server.events_url}?since={since}")
    assert info.value.status == 400


def _event(seq: int) -> SessionEvent:
    return SessionEvent(
        key="k", event_type="UPDATED", entity_type="UAC", status=0, reason=None, method="INFO",
        body=None, headers=None, seq=seq, time=0.0, callid="c", from_tag="f", to_tag="t",
        origin="remote",
    )  # fmt: skip


def test_slow_websocket_client_is_told_what_it_lost() -> None:
    client = _Client(limit=2)
    for seq in range(1, 6):
        client.push(_event(seq))
    taken = client.take()
    assert taken[0]["method"] == "events_lost"
    assert taken[0]["params"] == {
        "first_seq": 1,
        "last_seq": 3,
        "count": 3,
        "reason": "slow_consumer",
    }
    assert [n["params"]["seq"] for n in taken[1:]] == [4, 5]


async def test_ring_reports_engine_overflow(engine: Engine) -> None:
    ring = EventRing(engine, 100)
    client = ring.attach(None)
    for seq in (1, 2, 5, 6):
        ring._add(_event(seq))
    taken = client.take()
    assert [n["method"] for n in taken] == ["E_UA_SESSION"] * 2 + ["events_lost"] + [
        "E_UA_SESSION"
    ] * 2
    assert taken[2]["params"] == {
        "first_seq": 3,
        "last_seq": 4,
        "count": 2,
        "reason": "engine_overflow",
    }
    replay = ring.replay(1)
    assert [n["method"] for n in replay] == [
        "E_UA_SESSION",
        "events_lost",
        "E_UA_SESSION",
        "E_UA_SESSION",
    ]
    await ring.stop()


# -- webhooks --------------------------------------------------------------------------------------


class HookServer:
    """A local HTTP endpoint that records POSTs and answers with scripted statuses."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.attempts = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> "HookServer":
        async def handle(request: web.Request) -> web.Response:
            self.attempts += 1
            body = await request.json()
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self.statuses.pop(0) if self.statuses else 200
            if status == 200:
                self.received.put_nowait(body)
            return web.Response(status=status)

        app = web.Application()
        app.router.add_post("/hook", handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, HOST, 0)
        await site.start()
        self.url = f"http://{HOST}:{self.runner.addresses[0][1]}/hook"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@contextlib.asynccontextmanager
async def hook_server(**kwargs: Any) -> AsyncIterator[HookServer]:
    server = await HookServer(**kwargs).start()
    try:
        yield server
    finally:
        await server.stop()


async def test_webhook_posts_matching_events(make_mi: MakeMi, sink: Sink, engine: Engine) -> None:
    async with hook_server() as hook:
        hooks = (
            WebhookConfig(url=hook.url, event_types=("TERMINATED",)),
            WebhookConfig(url=hook.url, event_types=("ANSWERED",)),
        )
        _, rpc = await make_mi(webhooks=hooks)
        events = await make_events(rpc, sink, engine, 2)
        got = [await asyncio.wait_for(hook.received.get(), WAIT) for _ in events]
        assert [g["params"]["seq"] for g in got] == [e.seq for e in events]
        assert got[0]["method"] == "E_UA_SESSION"
        await asyncio.sleep(0.1)
        assert hook.received.empty()  # the ANSWERED-only hook got nothing
        listed = await rpc("subscribers_list")
        subs = listed["Events"][0]["Subscribers"]
        assert subs[0] == {
            "socket": f"webhook:{hook.url}", "expire": "never", "delivered": 2, "lost": 0,
            "queued": 0,
        }  # fmt: skip


async def test_webhook_retries(make_mi: MakeMi, sink: Sink, engine: Engine) -> None:
    async with hook_server(statuses=[500, 503]) as hook:
        _, rpc = await make_mi(webhooks=(WebhookConfig(url=hook.url, retries=2, timeout=2),))
        events = await make_events(rpc, sink, engine, 1)
        got = await asyncio.wait_for(hook.received.get(), WAIT)
        assert got["params"]["seq"] == events[0].seq
        assert hook.attempts == 3


async def test_webhook_losses_are_counted_and_logged(
    make_mi: MakeMi, sink: Sink, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    async with hook_server(statuses=[500] * 10) as hook:
        _, rpc = await make_mi(webhooks=(WebhookConfig(url=hook.url, retries=1, timeout=2),))
        with caplog.at_level(logging.WARNING, logger="uaconsole.mi"):
            await make_events(rpc, sink, engine, 1)
            for _ in range(100):
                listed = await rpc("subscribers_list")
                if listed["Events"][0]["Subscribers"][0]["lost"]:
                    break
                await asyncio.sleep(0.05)
        assert listed["Events"][0]["Subscribers"][0]["lost"] == 1
        assert "after 2 attempts: HTTP 500" in caplog.text


async def test_webhook_queue_overflow_is_counted(
    make_mi: MakeMi, sink: Sink, engine: Engine
) -> None:
    async with hook_server(delay=0.3) as hook:
        _, rpc = await make_mi(webhooks=(WebhookConfig(url=hook.url, queue=1),))
        await make_events(rpc, sink, engine, 4)
        for _ in range(100):
            sub = (await rpc("subscribers_list"))["Events"][0]["Subscribers"][0]
            if sub["lost"] + sub["delivered"] == 4:
                break
            await asyncio.sleep(0.05)
        assert sub["lost"] >= 1 and sub["lost"] + sub["delivered"] == 4


async def test_unreachable_webhook_never_blocks_the_engine(
    make_mi: MakeMi, sink: Sink, engine: Engine
) -> None:
    port = _free_tcp_port()
    hook = WebhookConfig(url=f"http://{HOST}:{port}/x", retries=3)
    _, rpc = await make_mi(webhooks=(hook,))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await make_events(rpc, sink, engine, 5)
    assert loop.time() - started < 2.0


async def test_websocket_gets_older_events_from_the_history(engine: Engine, sink: Sink) -> None:
    kept: list[SessionEvent] = []
    asked: list[tuple[int, int]] = []

    async def history(first: int, last: int) -> list[SessionEvent]:
        asked.append((first, last))
        return [e for e in kept if first <= e.seq <= last and e.seq != first]  # one is missing

    server = MiServer(engine, mi_config(event_buffer=1), history=history)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            rpc = Rpc(server, http)
            kept.extend(await make_events(rpc, sink, engine, 3))
            await asyncio.sleep(0.05)
            async with http.ws_connect(f"{server.events_url}?since=0") as ws:
                got = await ws_read(ws, 3)
    finally:
        await server.stop()
    first = kept[0].seq
    assert asked == [(1, first + 1)]
    assert got[0]["method"] == "events_lost"
    assert got[0]["params"]["last_seq"] == first
    assert [n["params"]["seq"] for n in got[1:]] == [kept[1].seq, kept[2].seq]
