"""A UDP listener whose socket would block: datagrams wait in order, and the wait is bounded.

On loopback a UDP ``sendto`` practically never returns EAGAIN (a full peer buffer drops the
datagram instead), so the socket here is a real, bound socket whose first ``sendto`` calls are
told to refuse, as a full send buffer would. Everything after that is real: the event loop's
writer callback, the kernel, a peer socket reading what arrives.
"""

import asyncio
import socket

import pytest

from engine.sip.message import DEFAULT_LIMITS
from engine.sip.target import Target
from engine.transport import udp
from engine.transport.base import Listener
from engine.transport.udp import UdpEndpoint

from .conftest import recv_datagram, udp_socket


class RefusingSocket(socket.socket):
    """A UDP socket whose next ``refusals`` sends would block."""

    refusals = 0

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:  # type: ignore[override]
        if self.refusals > 0:
            self.refusals -= 1
            raise BlockingIOError
        return super().sendto(data, address)


class Owner:
    """What a UdpEndpoint reports to: what was traced out, and the errors."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.errors: list[str] = []

    def deliver(self, *_: object) -> None:
        raise AssertionError("nothing is sent to the listener here")

    def trace(
        self, direction: str, transport: str, local: object, remote: object, data: bytes
    ) -> None:
        assert direction == "out" and transport == "udp"
        self.sent.append(data)

    def report_error(self, target: Target, message: str) -> None:
        self.errors.append(message)


def open_endpoint(owner: Owner) -> tuple[UdpEndpoint, RefusingSocket]:
    sock = RefusingSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    listener = Listener("udp", "127.0.0.1", sock.getsockname()[1])
    return UdpEndpoint(owner, DEFAULT_LIMITS, sock, listener, asyncio.get_running_loop()), sock


async def test_datagrams_wait_while_the_socket_would_block_and_leave_in_order() -> None:
    owner = Owner()
    endpoint, sock = open_endpoint(owner)
    try:
        with udp_socket() as peer:
            port = peer.getsockname()[1]
            target = Target("udp", "127.0.0.1", port)
            sock.refusals = 1
            for n in range(5):
                endpoint.send(b"datagram %d" % n, "127.0.0.1", port, target)
            assert owner.sent == []  # the first would have blocked: all five wait
            received = [(await recv_datagram(peer))[0] for _ in range(5)]
        assert received == [b"datagram %d" % n for n in range(5)]
        assert owner.sent == received  # traced once each, when they really left
        assert owner.errors == []
    finally:
        endpoint.close()
    await endpoint.closed


async def test_the_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udp, "MAX_QUEUED", 3)
    owner = Owner()
    endpoint, sock = open_endpoint(owner)
    try:
        sock.refusals = 1
        target = Target("udp", "127.0.0.1", 9)
        for _ in range(5):
            endpoint.send(b"x", "127.0.0.1", 9, target)
        assert len(owner.errors) == 2
        assert "3 datagrams already wait" in owner.errors[0]
    finally:
        endpoint.close()
    assert endpoint.closed.done()


async def test_a_closed_listener_refuses_to_send() -> None:
    owner = Owner()
    endpoint, _ = open_endpoint(owner)
    endpoint.close()
    endpoint.send(b"x", "127.0.0.1", 9, Target("udp", "127.0.0.1", 9))
    assert owner.sent == [] and "is closed" in owner.errors[0]
