"""UDP listeners: one datagram is one message."""

import asyncio
import logging
import socket

import pytest

from engine.sip.message import Limits
from engine.sip.target import Target
from engine.transport.manager import Listener, SipTransport, TransportError
from engine.transport.spec import ListenSpec

from .conftest import (
    MakeTransport,
    Recorder,
    needs_ipv6,
    recv_datagram,
    sip_message,
    udp_socket,
)


async def test_datagram_in_and_reply_from_the_listener_port(make_transport: MakeTransport) -> None:
    transport, inbox = await make_transport(["udp:127.0.0.1:0"])
    (listener,) = transport.listeners
    loop = asyncio.get_running_loop()
    with udp_socket() as peer:
        peer_port = peer.getsockname()[1]
        await loop.sock_sendto(peer, sip_message(1), ("127.0.0.1", listener.port))

        data, source, got_listener = await inbox.get()
        assert data == sip_message(1)
        assert source == Target("udp", "127.0.0.1", peer_port)
        assert got_listener is listener

        transport.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", source)
        reply, sender = await recv_datagram(peer)
    assert reply.startswith(b"SIP/2.0 200 OK")
    assert sender == ("127.0.0.1", listener.port)


async def test_port_zero_gives_the_real_port(make_transport: MakeTransport) -> None:
    transport, _ = await make_transport(["udp:127.0.0.1:0", "udp:127.0.0.1:0"])
    first, second = transport.listeners
    assert first.port > 0 and second.port > 0 and first.port != second.port
    assert first.transport == "udp" and first.host == "127.0.0.1"
    assert first.hostport == f"127.0.0.1:{first.port}"
    assert str(first) == f"udp:127.0.0.1:{first.port}"
    # The port is really bound: binding it again fails.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(OSError):
        sock.bind(("127.0.0.1", first.port))


async def test_send_uses_the_given_listener(make_transport: MakeTransport) -> None:
    transport, _ = await make_transport(["udp:127.0.0.1:0", "udp:127.0.0.1:0"])
    first, second = transport.listeners
    with udp_socket() as peer:
        target = Target("udp", "127.0.0.1", peer.getsockname()[1])
        transport.send(sip_message(1), target)
        _, sender = await recv_datagram(peer)
        assert sender[1] == first.port
        transport.send(sip_message(2), target, second)
        data, sender = await recv_datagram(peer)
        assert (data, sender[1]) == (sip_message(2), second.port)


async def test_crlf_keepalive_is_ignored(make_transport: MakeTransport) -> None:
    transport, inbox = await make_transport(["udp:127.0.0.1:0"])
    port = transport.listeners[0].port
    loop = asyncio.get_running_loop()
    with udp_socket() as peer:
        await loop.sock_sendto(peer, b"\r\n\r\n", ("127.0.0.1", port))
        await loop.sock_sendto(peer, b"\r\n", ("127.0.0.1", port))
        await loop.sock_sendto(peer, sip_message(7), ("127.0.0.1", port))
        data, _, _ = await inbox.get()
    assert data == sip_message(7)
    assert inbox.queue.empty()


async def test_oversize_datagram_is_dropped_and_logged(
    make_transport: MakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport, inbox = await make_transport(["udp:127.0.0.1:0"], limits=Limits(max_message=1000))
    port = transport.listeners[0].port
    loop = asyncio.get_running_loop()
    big = sip_message(1, b"x" * 1500)
    with caplog.at_level(logging.WARNING, logger="uaconsole.transport"), udp_socket() as peer:
        await loop.sock_sendto(peer, big, ("127.0.0.1", port))
        await loop.sock_sendto(peer, sip_message(2), ("127.0.0.1", port))
        data, _, _ = await inbox.get()
    assert data == sip_message(2)
    assert inbox.queue.empty()
    assert f"dropped a {len(big)}-byte datagram" in caplog.text


async def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        transport = SipTransport(lambda *_: None)
        with pytest.raises(TransportError) as caught:
            await transport.start([ListenSpec("udp", "127.0.0.1", port)])
    assert str(caught.value) == f"cannot listen on udp:127.0.0.1:{port}: address already in use"
    assert transport.listeners == []


async def test_a_failing_listener_closes_those_already_open() -> None:
    # A port that is free now: the first listener takes it, the second cannot bind.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        transport = SipTransport(lambda *_: None)
        with pytest.raises(TransportError, match=f"tcp:127.0.0.1:{busy_port}: address already"):
            await transport.start(
                [ListenSpec("udp", "127.0.0.1", free), ListenSpec("tcp", "127.0.0.1", busy_port)]
            )
    assert transport.listeners == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", free))  # closed again, so this works


async def test_stop_closes_the_socket() -> None:
    transport = SipTransport(lambda *_: None)
    (listener,) = await transport.start([ListenSpec("udp", "127.0.0.1", 0)])
    await transport.stop()
    assert transport.listeners == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", listener.port))


async def test_on_message_raising_does_not_stop_later_messages(
    make_transport: MakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    got: asyncio.Queue[bytes] = asyncio.Queue()

    def on_message(data: bytes, source: Target, listener: Listener) -> None:
        got.put_nowait(data)
        if data == sip_message(1):
            raise RuntimeError("boom in the core")

    transport, _ = await make_transport(["udp:127.0.0.1:0"], on_message=on_message)
    port = transport.listeners[0].port
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.ERROR, logger="uaconsole.transport"), udp_socket() as peer:
        await loop.sock_sendto(peer, sip_message(1), ("127.0.0.1", port))
        await loop.sock_sendto(peer, sip_message(2), ("127.0.0.1", port))
        assert await asyncio.wait_for(got.get(), 5) == sip_message(1)
        assert await asyncio.wait_for(got.get(), 5) == sip_message(2)
    assert "RuntimeError: boom in the core" in caplog.text  # logged with its traceback


async def test_trace_records_in_and_out(make_transport: MakeTransport) -> None:
    recorder = Recorder()
    transport, inbox = await make_transport(["udp:127.0.0.1:0"], on_trace=recorder.on_trace)
    port = transport.listeners[0].port
    loop = asyncio.get_running_loop()
    with udp_socket() as peer:
        peer_port = peer.getsockname()[1]
        await loop.sock_sendto(peer, sip_message(1), ("127.0.0.1", port))
        _, source, _ = await inbox.get()
        transport.send(sip_message(2), source)
        await recv_datagram(peer)
    inbound, outbound = recorder.traces
    assert (inbound.direction, inbound.transport, inbound.data) == ("in", "udp", sip_message(1))
    assert (inbound.local_host, inbound.local_port) == ("127.0.0.1", port)
    assert (inbound.remote_host, inbound.remote_port) == ("127.0.0.1", peer_port)
    assert (outbound.direction, outbound.data) == ("out", sip_message(2))
    assert (outbound.local_host, outbound.local_port) == ("127.0.0.1", port)
    assert (outbound.remote_host, outbound.remote_port) == ("127.0.0.1", peer_port)
    assert 0 < inbound.time <= outbound.time


async def test_send_to_a_host_name_resolves_it(
    make_transport: MakeTransport, fake_dns: dict
) -> None:
    transport, _ = await make_transport(["udp:127.0.0.1:0"])
    with udp_socket() as peer:
        # sip.test resolves to ::1 first; with no IPv6 listener, 127.0.0.1 is used.
        transport.send(sip_message(3), Target("udp", "sip.test", peer.getsockname()[1]))
        data, sender = await recv_datagram(peer)
    assert data == sip_message(3)
    assert sender == ("127.0.0.1", transport.listeners[0].port)


async def test_send_without_a_listener_of_that_family_reports_an_error(
    make_transport: MakeTransport,
) -> None:
    recorder = Recorder()
    transport, _ = await make_transport(["udp:127.0.0.1:0"], on_error=recorder.on_error)
    target = Target("udp", "::1", 5060)
    transport.send(sip_message(1), target)  # must not raise
    got_target, message = await recorder.error()
    assert got_target == target
    assert "no UDP listener for IPv6" in message


async def test_send_to_an_unknown_name_reports_an_error(
    make_transport: MakeTransport, fake_dns: dict
) -> None:
    recorder = Recorder()
    transport, _ = await make_transport(["udp:127.0.0.1:0"], on_error=recorder.on_error)
    target = Target("udp", "no-such-host.invalid", 5060)
    transport.send(sip_message(1), target)
    got_target, message = await recorder.error()
    assert got_target == target
    assert "cannot resolve no-such-host.invalid" in message


@needs_ipv6
async def test_ipv6_datagram_both_ways(make_transport: MakeTransport) -> None:
    transport, inbox = await make_transport(["udp:127.0.0.1:0", "udp:[::1]:0"])
    _v4, v6 = transport.listeners
    assert v6.hostport == f"[::1]:{v6.port}"
    assert str(v6) == f"udp:[::1]:{v6.port}"
    loop = asyncio.get_running_loop()
    with udp_socket("::1") as peer:
        await loop.sock_sendto(peer, sip_message(1), ("::1", v6.port))
        _, source, listener = await inbox.get()
        assert source == Target("udp", "::1", peer.getsockname()[1])
        assert listener is v6
        transport.send(sip_message(2), source)  # no listener given: the IPv6 one is chosen
        data, sender = await recv_datagram(peer)
    assert (data, sender) == (sip_message(2), ("::1", v6.port))


async def test_send_problems_are_reported_not_raised(make_transport: MakeTransport) -> None:
    recorder = Recorder()
    transport, _ = await make_transport(["udp:127.0.0.1:0"], on_error=recorder.on_error)
    for target in (Target("udp", "127.0.0.1", 0), Target("sctp", "127.0.0.1", 5060)):
        transport.send(sip_message(1), target)
        assert (await recorder.error())[0] == target
    await transport.stop()
    transport.send(sip_message(1), Target("udp", "127.0.0.1", 5060))
    assert "not running" in (await recorder.error())[1]
