"""Fixtures for the control API tests: an engine with its MI server on free loopback ports, a
JSON-RPC client, a dummy SIP peer that swallows what it gets, and SIPp as a UAS.

Every socket is on 127.0.0.1: the engine, the MI listener, subscribers, SIPp.
"""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.api.config import EngineConfig
from engine.api.engine import Engine
from engine.api.streams import Gap, Reader
from engine.mi.config import MiConfig
from engine.mi.server import MiServer
from engine.ua.events import SessionEvent
from tests.conftest import require_tool

HOST = "127.0.0.1"
WAIT = 10.0
SCENARIOS = Path(__file__).parent / "scenarios"
TOKEN = "test-token-0123456789abcdef"

SDP_OFFER = (
    "v=0\r\n"
    "o=alice 1000 1000 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def mi_config(**changes: Any) -> MiConfig:
    """The MI configuration tests use: an ephemeral port, no rate limit unless asked."""
    base = MiConfig(host=HOST, port=0, client_start_rate=0)
    return replace(base, **changes)


async def next_event(reader: Reader[SessionEvent], timeout: float = WAIT) -> SessionEvent:
    """The next SessionEvent (Gap markers skipped)."""
    while True:
        item = await asyncio.wait_for(reader.get(), timeout)
        if not isinstance(item, Gap):
            return item


async def event_of(
    reader: Reader[SessionEvent], key: str, event_type: str, timeout: float = WAIT
) -> SessionEvent:
    """The next event of ``key`` with ``event_type`` (others skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event = await next_event(reader, max(0.01, deadline - loop.time()))
        if event.key == key and event.event_type == event_type:
            return event


class Rpc:
    """A JSON-RPC client of one MI server (aiohttp), with raw access for the HTTP tests."""

    def __init__(self, server: MiServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.url = server.url

    async def post(
        self, body: bytes | str, headers: dict[str, str] | None = None, method: str = "POST"
    ) -> tuple[int, Any]:
        """Status and decoded JSON (None when the body is empty, text when not JSON)."""
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = body.encode() if isinstance(body, str) else body
        async with self.session.request(method, self.url, data=data, headers=h) as response:
            text = await response.text()
            if not text:
                return response.status, None
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def request(self, method: str, params: Any = None, **extra: Any) -> dict[str, Any]:
        """The whole response object of one request (id 1)."""
        doc: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            doc["params"] = params
        doc.update(extra)
        status, answer = await self.post(json.dumps(doc))
        assert status == 200, (status, answer)
        return answer

    async def __call__(self, method: str, params: Any = None) -> Any:
        """The result; AssertionError carrying the error if there is one."""
        answer = await self.request(method, params)
        assert "error" not in answer, answer["error"]
        return answer["result"]

    async def error(self, method: str, params: Any = None) -> dict[str, Any]:
        """The error member (the call must fail)."""
        answer = await self.request(method, params)
        assert "error" in answer, answer
        return answer["error"]


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    """A started engine on a free UDP port of 127.0.0.1."""
    config = EngineConfig().with_values({"listen": [f"udp:{HOST}:0"]})
    eng = Engine(config)
    await eng.start()
    yield eng
    await eng.stop(timeout=0.3)


MakeMi = Callable[..., Awaitable[tuple[MiServer, Rpc]]]


@pytest.fixture
async def make_mi(engine: Engine) -> AsyncIterator[MakeMi]:
    """``await make_mi(**MiConfig changes)`` -> (started server, client)."""
    servers: list[MiServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(**changes: Any) -> tuple[MiServer, Rpc]:
        server = MiServer(engine, mi_config(**changes))
        await server.start()
        servers.append(server)
        http = aiohttp.ClientSession()
        sessions.append(http)
        return server, Rpc(server, http)

    yield make
    for http in sessions:
        await http.close()
    for server in servers:
        await server.stop()


@pytest.fixture
async def mi(make_mi: MakeMi) -> tuple[MiServer, Rpc]:
    """The default server and its client."""
    return await make_mi()


@pytest.fixture
async def rpc(mi: tuple[MiServer, Rpc]) -> Rpc:
    """The default server's client."""
    return mi[1]


class Sink:
    """A UDP socket of 127.0.0.1 that receives whatever is sent to it (a silent SIP peer)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def start(self) -> "Sink":
        loop = asyncio.get_running_loop()
        queue = self.queue

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                queue.put_nowait(data)

        self.transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=(HOST, 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    async def get(self, timeout: float = WAIT) -> bytes:
        return await asyncio.wait_for(self.queue.get(), timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """A silent UDP peer on 127.0.0.1."""
    s = await Sink().start()
    yield s
    s.close()


class Sipp:
    """SIPp running a UAS scenario on a free port of 127.0.0.1."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, workdir: Path) -> None:
        self.process = process
        self.port = port
        self.workdir = workdir

    @property
    def uri(self) -> str:
        return f"sip:service@{HOST}:{self.port}"

    def errors(self) -> str:
        out = []
        for path in self.workdir.glob("*error*.log"):
            out.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(out)


async def start_sipp(workdir: Path, *scenario: str, extra: tuple[str, ...] = ()) -> Sipp:
    """Start SIPp with ``scenario`` (``-sn uas`` or ``-sf FILE``) and wait until it listens."""
    sipp = require_tool("sipp")
    port = free_udp_port()
    process = await asyncio.create_subprocess_exec(
        sipp, *scenario, "-i", HOST, "-p", str(port), "-nostdin", "-trace_err",
        "-timeout", "120", *extra,
        cwd=workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    # SIPp listens once binding the port fails for others.
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                return Sipp(process, port, workdir)
        if process.returncode is not None:
            break
        await asyncio.sleep(0.02)
    process.kill()
    raise RuntimeError(f"SIPp did not start on port {port}")


async def stop_sipp(sipp: Sipp) -> None:
    if sipp.process.returncode is None:
        sipp.process.terminate()
        try:
            await asyncio.wait_for(sipp.process.wait(), 5)
        except TimeoutError:
            sipp.process.kill()
            await sipp.process.wait()


@pytest.fixture
async def sipp_uas(tmp_path: Path) -> AsyncIterator[Sipp]:
    """SIPp's built-in ``uas`` (180, 200 with SDP, then BYE answered 200)."""
    sipp = await start_sipp(tmp_path, "-sn", "uas")
    yield sipp
    await stop_sipp(sipp)


@pytest.fixture
async def sipp_reinvite(tmp_path: Path) -> AsyncIterator[Sipp]:
    """SIPp as a UAS that also accepts one re-INVITE (``scenarios/uas_reinvite.xml``)."""
    sipp = await start_sipp(tmp_path, "-sf", str(SCENARIOS / "uas_reinvite.xml"))
    yield sipp
    await stop_sipp(sipp)


@contextlib.asynccontextmanager
async def watching(engine: Engine) -> AsyncIterator[list[Any]]:
    """Collects every SIP message the engine sends or receives while open."""
    reader = engine.messages()
    seen: list[Any] = []

    async def pump() -> None:
        async for item in reader:
            seen.append(item)

    task = asyncio.create_task(pump())
    try:
        yield seen
    finally:
        await asyncio.sleep(0.05)
        reader.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
