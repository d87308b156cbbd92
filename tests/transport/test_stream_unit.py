"""StreamConnection alone, on a fake transport: keep-alive pings, early TLS data, a full buffer."""

import asyncio
from typing import Any

import pytest

from engine.sip.message import DEFAULT_LIMITS
from engine.sip.target import Target
from engine.transport.manager import Listener
from engine.transport.stream import MAX_WRITE_BUFFER, StreamConnection

from .conftest import sip_message

LISTENER = Listener("tls", "127.0.0.1", 5061)
PEER = Target("tls", "127.0.0.1", 40000)


class FakeOwner:
    def __init__(self) -> None:
        self.delivered: list[bytes] = []
        self.errors: list[str] = []

    def deliver(self, data: bytes, source: Target, listener: Listener, local: Any) -> None:
        assert (source, listener, local) == (PEER, LISTENER, ("127.0.0.1", 5061))
        self.delivered.append(data)

    def trace(self, *args: Any) -> None:
        pass

    def report_error(self, target: Target, message: str) -> None:
        self.errors.append(message)

    def stream_opened(self, conn: StreamConnection) -> None:
        pass

    def stream_closing(self, conn: StreamConnection) -> None:
        pass

    def stream_closed(self, conn: StreamConnection) -> None:
        pass

    def listener_for(self, transport: str, local: tuple[str, int]) -> Listener:
        raise AssertionError("an accepted connection knows its listener")


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__({"peername": (PEER.host, PEER.port), "sockname": ("127.0.0.1", 5061)})
        self.written = bytearray()
        self.closed = False
        self.buffered = 0

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return self.buffered


def connected() -> tuple[StreamConnection, FakeOwner, FakeTransport]:
    owner = FakeOwner()
    conn = StreamConnection(owner, "tls", DEFAULT_LIMITS, 300.0, LISTENER)
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, owner, transport


MSG = sip_message(1)


@pytest.mark.parametrize(
    ("chunks", "pongs"),
    [
        ([b"\r\n\r\n"], 1),
        ([b"\r\n", b"\r\n"], 1),  # a ping cut in two
        ([b"\r", b"\n\r\n"], 1),
        ([b"\r\n"], 0),  # a pong from the peer is not answered
        ([b"\r\n", MSG, b"\r\n"], 0),  # two pongs with a message between
        ([MSG + b"\r\n\r\n"], 1),
        ([MSG + b"\r\n", b"\r\n"], 1),
        ([b"\r\n\r\n" + MSG[:10]], 1),
        ([b"\r\n\r\n", b"\r\n\r\n"], 2),
    ],
)
async def test_pings_are_answered_with_one_pong(chunks: list[bytes], pongs: int) -> None:
    conn, owner, transport = connected()
    for chunk in chunks:
        conn.data_received(chunk)
    assert bytes(transport.written) == b"\r\n" * pongs
    assert owner.delivered == [MSG] * b"".join(chunks).count(MSG)
    conn.connection_lost(None)


async def test_data_before_connection_made_is_kept() -> None:
    # With TLS, application data can come with the end of the handshake, before connection_made.
    owner = FakeOwner()
    conn = StreamConnection(owner, "tls", DEFAULT_LIMITS, 300.0, LISTENER)
    conn.data_received(MSG[:30])
    conn.data_received(MSG[30:] + sip_message(2))
    assert owner.delivered == []
    transport = FakeTransport()
    conn.connection_made(transport)
    assert owner.delivered == [MSG, sip_message(2)]
    conn.connection_lost(None)


async def test_a_full_send_buffer_refuses_the_message() -> None:
    conn, owner, transport = connected()
    transport.buffered = MAX_WRITE_BUFFER
    conn.send(MSG, PEER)
    assert transport.written == b""
    assert owner.errors == [f"cannot send to {PEER}: the peer is not reading (send buffer full)"]
    conn.connection_lost(None)
