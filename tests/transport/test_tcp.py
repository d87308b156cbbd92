"""TCP listeners and connections: framing, keep-alives, reuse, garbage, idle timeout."""

import asyncio
import contextlib
import logging
import socket

import pytest

from engine.sip.target import Target
from engine.transport.manager import SipTransport, TransportError
from engine.transport.spec import ListenSpec

from .conftest import (
    MakeTransport,
    Recorder,
    needs_ipv6,
    read_eof,
    read_exactly,
    sip_message,
)

RESPONSE = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"


async def connect(port: int, host: str = "127.0.0.1"):
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def write_pieces(writer: asyncio.StreamWriter, *pieces: bytes) -> None:
    """Write each piece on its own, letting the loop run between them."""
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0)
        await asyncio.sleep(0)


async def test_messages_in_odd_pieces_then_reply_on_the_same_connection(
    make_transport: MakeTransport,
) -> None:
    transport, inbox = await make_transport(["tcp:127.0.0.1:0"])
    (listener,) = transport.listeners
    first, second = sip_message(1, b"v=0\r\n"), sip_message(2)
    reader, writer = await connect(listener.port)
    client_port = writer.get_extra_info("sockname")[1]
    try:
        # The first message in three pieces, then a CRLFCRLF ping split in two.
        await write_pieces(writer, first[:7], first[7:40], first[40:] + b"\r\n", b"\r\n")
        assert await read_exactly(reader, 2) == b"\r\n"  # the pong (RFC 5626 section 4.4.1)
        # The second in pieces, one cutting "\r\n\r\n" in the middle.
        cut = second.index(b"\r\n\r\n") + 2
        await write_pieces(writer, second[:1], second[1:cut], second[cut:])

        data1, source1, listener1 = await inbox.get()
        data2, source2, _ = await inbox.get()
        assert (data1, data2) == (first, second)
        assert source1 == source2 == Target("tcp", "127.0.0.1", client_port)
        assert listener1 is listener
        assert transport.connection_count == 1

        transport.send(RESPONSE, source2)
        assert await read_exactly(reader, len(RESPONSE)) == RESPONSE
        assert transport.connection_count == 1
    finally:
        await close(writer)


async def test_two_messages_in_one_write(make_transport: MakeTransport) -> None:
    transport, inbox = await make_transport(["tcp:127.0.0.1:0"])
    _reader, writer = await connect(transport.listeners[0].port)
    try:
        writer.write(b"\r\n" + sip_message(1) + sip_message(2, b"hello"))
        assert (await inbox.get())[0] == sip_message(1)
        assert (await inbox.get())[0] == sip_message(2, b"hello")
    finally:
        await close(writer)


async def test_a_pong_is_not_answered(make_transport: MakeTransport) -> None:
    transport, inbox = await make_transport(["tcp:127.0.0.1:0"])
    reader, writer = await connect(transport.listeners[0].port)
    try:
        writer.write(b"\r\n")  # a pong from the peer: no answer
        writer.write(sip_message(1))
        await inbox.get()
        transport.send(RESPONSE, Target("tcp", "127.0.0.1", writer.get_extra_info("sockname")[1]))
        # The first bytes back are the response, not a CRLF.
        assert await read_exactly(reader, len(RESPONSE)) == RESPONSE
    finally:
        await close(writer)


async def test_garbage_closes_only_that_connection(
    make_transport: MakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport, inbox = await make_transport(["tcp:127.0.0.1:0"])
    port = transport.listeners[0].port
    good_reader, good = await connect(port)
    bad_reader, bad = await connect(port)
    try:
        good.write(sip_message(1))
        _, good_source, _ = await inbox.get()
        with caplog.at_level(logging.WARNING, logger="uaconsole.transport"):
            bad.write(b"INVITE sip:x SIP/2.0\r\nContent-Length: banana\r\n\r\n")
            assert await read_eof(bad_reader) == b""  # closed by the transport
        assert "closing tcp connection from" in caplog.text
        assert "Content-Length" in caplog.text  # the reason
        assert transport.connection_count == 1

        good.write(sip_message(2))
        assert (await inbox.get())[0] == sip_message(2)
        transport.send(RESPONSE, good_source)
        assert await read_exactly(good_reader, len(RESPONSE)) == RESPONSE
        assert inbox.queue.empty()
    finally:
        await close(good)
        await close(bad)


async def test_outgoing_connection_is_opened_once_and_reused(
    make_transport: MakeTransport,
) -> None:
    recorder = Recorder()
    alice, alice_inbox = await make_transport(["tcp:127.0.0.1:0"], on_trace=recorder.on_trace)
    bob, bob_inbox = await make_transport(["tcp:127.0.0.1:0"])
    bob_target = Target("tcp", "127.0.0.1", bob.listeners[0].port)

    alice.send(sip_message(1), bob_target)
    alice.send(sip_message(2), bob_target)  # queued behind the connect
    data1, source, bob_listener = await bob_inbox.get()
    data2, source2, _ = await bob_inbox.get()
    assert (data1, data2) == (sip_message(1), sip_message(2))
    assert source == source2 and source.port != alice.listeners[0].port  # an ephemeral port
    assert bob_listener == bob.listeners[0]

    alice.send(sip_message(3), bob_target)  # once connected
    assert (await bob_inbox.get())[0] == sip_message(3)

    bob.send(RESPONSE, source)  # back on the connection alice opened
    data, reply_source, alice_listener = await alice_inbox.get()
    assert data == RESPONSE
    assert reply_source == bob_target
    assert alice_listener == alice.listeners[0]
    assert alice.connection_count == 1
    assert bob.connection_count == 1
    # Alice's trace shows the connection's own (ephemeral) end, not her listener's.
    assert [r.direction for r in recorder.traces] == ["out", "out", "out", "in"]
    for record in recorder.traces:
        assert (record.local_host, record.local_port) == ("127.0.0.1", source.port)
        assert (record.remote_host, record.remote_port) == ("127.0.0.1", bob_target.port)


async def test_outgoing_to_a_host_name(make_transport: MakeTransport, fake_dns: dict) -> None:
    alice, _ = await make_transport(["tcp:127.0.0.1:0"])
    bob, bob_inbox = await make_transport(["tcp:127.0.0.1:0"])
    target = Target("tcp", "v4.sip.test", bob.listeners[0].port)
    alice.send(sip_message(1), target)
    alice.send(sip_message(2), target)
    assert (await bob_inbox.get())[0] == sip_message(1)
    assert (await bob_inbox.get())[0] == sip_message(2)
    # The connection is known by its address too.
    alice.send(sip_message(3), Target("tcp", "127.0.0.1", bob.listeners[0].port))
    assert (await bob_inbox.get())[0] == sip_message(3)
    assert alice.connection_count == 1


async def test_connect_failure_is_reported(make_transport: MakeTransport) -> None:
    recorder = Recorder()
    alice, _ = await make_transport(["tcp:127.0.0.1:0"], on_error=recorder.on_error)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = Target("tcp", "127.0.0.1", port)
    alice.send(sip_message(1), target)
    alice.send(sip_message(2), target)
    assert (await recorder.error())[0] == target
    got_target, message = await recorder.error()
    assert got_target == target
    assert "cannot connect" in message
    assert alice.connection_count == 0


async def test_idle_connection_is_closed(make_transport: MakeTransport) -> None:
    transport, inbox = await make_transport(["tcp:127.0.0.1:0"], idle_timeout=0.2)
    reader, writer = await connect(transport.listeners[0].port)
    loop = asyncio.get_running_loop()
    try:
        sent = loop.time()
        writer.write(sip_message(1))
        await inbox.get()
        assert transport.connection_count == 1
        assert await read_eof(reader) == b""
        assert loop.time() - sent >= 0.19  # not before the timeout, counted from the message
        assert transport.connection_count == 0
    finally:
        await close(writer)


async def test_trace_records_for_a_connection(make_transport: MakeTransport) -> None:
    recorder = Recorder()
    transport, inbox = await make_transport(["tcp:127.0.0.1:0"], on_trace=recorder.on_trace)
    port = transport.listeners[0].port
    reader, writer = await connect(port)
    client_port = writer.get_extra_info("sockname")[1]
    try:
        writer.write(sip_message(1) + b"\r\n\r\n")
        _, source, _ = await inbox.get()
        transport.send(RESPONSE, source)
        assert await read_exactly(reader, 2 + len(RESPONSE)) == b"\r\n" + RESPONSE
    finally:
        await close(writer)
    inbound, outbound = recorder.traces  # keep-alives are not traced
    assert (inbound.direction, inbound.transport, inbound.data) == ("in", "tcp", sip_message(1))
    assert (outbound.direction, outbound.transport, outbound.data) == ("out", "tcp", RESPONSE)
    for record in (inbound, outbound):
        assert (record.local_host, record.local_port) == ("127.0.0.1", port)
        assert (record.remote_host, record.remote_port) == ("127.0.0.1", client_port)


async def test_on_message_raising_does_not_close_the_connection(
    make_transport: MakeTransport,
) -> None:
    got: asyncio.Queue[bytes] = asyncio.Queue()

    def on_message(data: bytes, source: Target, listener: object) -> None:
        got.put_nowait(data)
        raise ValueError("the core failed")

    transport, _ = await make_transport(["tcp:127.0.0.1:0"], on_message=on_message)
    _reader, writer = await connect(transport.listeners[0].port)
    try:
        writer.write(sip_message(1) + sip_message(2))
        assert await asyncio.wait_for(got.get(), 5) == sip_message(1)
        assert await asyncio.wait_for(got.get(), 5) == sip_message(2)
        writer.write(sip_message(3))
        assert await asyncio.wait_for(got.get(), 5) == sip_message(3)
    finally:
        await close(writer)


async def test_message_without_content_length_ends_with_the_stream(
    make_transport: MakeTransport,
) -> None:
    transport, inbox = await make_transport(["tcp:127.0.0.1:0"])
    reader, writer = await connect(transport.listeners[0].port)
    old = b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nCall-ID: old\r\n\r\nbody"
    writer.write(old)
    writer.write_eof()
    assert (await inbox.get())[0] == old
    assert await read_eof(reader) == b""
    await close(writer)


async def test_tcp_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        transport = SipTransport(lambda *_: None)
        with pytest.raises(TransportError) as caught:
            await transport.start([ListenSpec("tcp", "127.0.0.1", port)])
    assert str(caught.value) == f"cannot listen on tcp:127.0.0.1:{port}: address already in use"


async def test_stop_closes_connections_and_listeners(make_transport: MakeTransport) -> None:
    alice = SipTransport(lambda *_: None)
    await alice.start([ListenSpec("tcp", "127.0.0.1", 0)])
    bob, bob_inbox = await make_transport(["tcp:127.0.0.1:0"])
    port = alice.listeners[0].port
    reader, writer = await connect(port)
    alice.send(sip_message(1), Target("tcp", "127.0.0.1", bob.listeners[0].port))
    await bob_inbox.get()
    try:
        await asyncio.wait_for(alice.stop(), 1.0)  # closes them, rather than waiting
        assert alice.connection_count == 0
        assert alice.listeners == []
        assert await read_eof(reader) == b""
        with pytest.raises(OSError):  # nobody listens any more
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        await close(writer)


@needs_ipv6
async def test_ipv6_connection_both_ways(make_transport: MakeTransport) -> None:
    transport, inbox = await make_transport(["tcp:[::1]:0"])
    (listener,) = transport.listeners
    assert listener.hostport == f"[::1]:{listener.port}"
    reader, writer = await connect(listener.port, "::1")
    try:
        writer.write(sip_message(1))
        _, source, _ = await inbox.get()
        assert source == Target("tcp", "::1", writer.get_extra_info("sockname")[1])
        transport.send(RESPONSE, source)
        assert await read_exactly(reader, len(RESPONSE)) == RESPONSE
        assert transport.connection_count == 1
    finally:
        await close(writer)
