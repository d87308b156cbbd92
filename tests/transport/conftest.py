"""Helpers for the transport tests: an inbox for on_message, transports that stop themselves,
raw peers, and a throwaway certificate authority. Every socket is on 127.0.0.1 or ::1."""

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trustme

from engine.sip.target import Target
from engine.transport.manager import Listener, SipTransport, TraceRecord
from engine.transport.spec import ListenSpec

#: How long a test waits for something that should happen at once on loopback.
WAIT = 5.0


def sip_message(number: int, body: bytes = b"") -> bytes:
    """A small request with a correct Content-Length."""
    return (
        f"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{number}\r\n"
        f"From: <sip:alice@127.0.0.1>;tag=a{number}\r\n"
        f"To: <sip:bob@127.0.0.1>\r\n"
        f"Call-ID: call-{number}@127.0.0.1\r\n"
        f"CSeq: {number} OPTIONS\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Inbox:
    """An on_message callback that queues what it gets."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Target, Listener]] = asyncio.Queue()

    def __call__(self, data: bytes, source: Target, listener: Listener) -> None:
        self.queue.put_nowait((data, source, listener))

    async def get(self) -> tuple[bytes, Target, Listener]:
        return await asyncio.wait_for(self.queue.get(), WAIT)


class Recorder:
    """Collects on_trace records and on_error reports."""

    def __init__(self) -> None:
        self.traces: list[TraceRecord] = []
        self.errors: asyncio.Queue[tuple[Target, str]] = asyncio.Queue()

    def on_trace(self, record: TraceRecord) -> None:
        self.traces.append(record)

    def on_error(self, target: Target, message: str) -> None:
        self.errors.put_nowait((target, message))

    async def error(self) -> tuple[Target, str]:
        return await asyncio.wait_for(self.errors.get(), WAIT)


MakeTransport = Callable[..., Awaitable[tuple[SipTransport, Inbox]]]


@pytest.fixture
async def make_transport() -> AsyncIterator[MakeTransport]:
    """``await make_transport(["udp:127.0.0.1:0"], **kwargs)`` -> (started transport, inbox)."""
    made: list[SipTransport] = []

    async def make(
        specs: list[str], on_message: Any = None, **kwargs: Any
    ) -> tuple[SipTransport, Inbox]:
        inbox = Inbox()
        transport = SipTransport(on_message or inbox, **kwargs)
        made.append(transport)
        await transport.start([ListenSpec.parse(spec) for spec in specs])
        return transport, inbox

    yield make
    for transport in made:
        await transport.stop()


def has_ipv6() -> bool:
    """True when ::1 can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="this machine cannot bind ::1 (no IPv6)")


def udp_socket(host: str = "127.0.0.1") -> socket.socket:
    """A non-blocking UDP socket bound to an ephemeral port, for loop.sock_sendto/recvfrom."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((host, 0))
    return sock


async def recv_datagram(sock: socket.socket) -> tuple[bytes, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), WAIT)
    return data, (addr[0], addr[1])


async def read_exactly(reader: asyncio.StreamReader, count: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(count), WAIT)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the peer closes; fails if it does not close in time."""
    return await asyncio.wait_for(reader.read(), WAIT)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A server context whose certificate names 127.0.0.1, ::1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "::1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts only the throwaway CA, and checks host names."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def is_ip(host: Any) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


#: Names the fake resolver knows; anything else fails as unknown. No query leaves the machine.
FAKE_HOSTS = {
    "sip.test": ["::1", "127.0.0.1"],  # IPv6 first, as a resolver may order them
    "v4.sip.test": ["127.0.0.1"],
}


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Make the running loop's getaddrinfo resolve FAKE_HOSTS only (IP literals pass through)."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *, family: int = 0, type: int = 0, **kw: Any):
        if is_ip(host):
            return await real(host, port, family=family, type=type, **kw)
        if host not in FAKE_HOSTS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos = []
        for address in FAKE_HOSTS[host]:
            af = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family not in (0, af):
                continue
            sockaddr = (address, int(port), 0, 0) if af == socket.AF_INET6 else (address, int(port))
            infos.append((af, type or socket.SOCK_STREAM, 0, "", sockaddr))
        return infos

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return FAKE_HOSTS
