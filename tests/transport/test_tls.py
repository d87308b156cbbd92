"""TLS listeners and connections, with a throwaway CA made by trustme."""

import asyncio
import contextlib
import logging
import ssl

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


async def test_tls_without_a_certificate_is_refused() -> None:
    transport = SipTransport(lambda *_: None)
    with pytest.raises(TransportError, match=r"cannot listen on tls:127\.0\.0\.1:0: .*certificate"):
        await transport.start(
            [ListenSpec("udp", "127.0.0.1", 0), ListenSpec("tls", "127.0.0.1", 0)]
        )
    assert transport.listeners == []


async def test_raw_tls_client_both_ways(
    make_transport: MakeTransport, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    recorder = Recorder()
    transport, inbox = await make_transport(
        ["tls:127.0.0.1:0"], tls_server=server_tls, on_trace=recorder.on_trace
    )
    (listener,) = transport.listeners
    assert str(listener) == f"tls:127.0.0.1:{listener.port}"
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", listener.port, ssl=client_tls, server_hostname="127.0.0.1"
    )
    client_port = writer.get_extra_info("sockname")[1]
    try:
        message = sip_message(1, b"secret")
        writer.write(message[:20])
        writer.write(message[20:] + b"\r\n\r\n")
        data, source, got_listener = await inbox.get()
        assert data == message
        assert source == Target("tls", "127.0.0.1", client_port)
        assert got_listener is listener
        assert await read_exactly(reader, 2) == b"\r\n"  # the pong, over TLS

        transport.send(RESPONSE, source)
        assert await read_exactly(reader, len(RESPONSE)) == RESPONSE
        assert transport.connection_count == 1
    finally:
        writer.close()
        await writer.wait_closed()
    inbound, outbound = recorder.traces
    assert (inbound.transport, inbound.direction, inbound.remote_port) == ("tls", "in", client_port)
    assert (outbound.transport, outbound.direction, outbound.data) == ("tls", "out", RESPONSE)


async def test_transport_to_transport_over_tls(
    make_transport: MakeTransport, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    alice, alice_inbox = await make_transport(
        ["tls:127.0.0.1:0"], tls_server=server_tls, tls_client=client_tls
    )
    bob, bob_inbox = await make_transport(["tls:127.0.0.1:0"], tls_server=server_tls)
    bob_target = Target("tls", "127.0.0.1", bob.listeners[0].port)
    alice.send(sip_message(1), bob_target)
    alice.send(sip_message(2), bob_target)
    assert (await bob_inbox.get())[0] == sip_message(1)
    data, source, _ = await bob_inbox.get()
    assert data == sip_message(2)
    bob.send(RESPONSE, source)
    data, reply_source, listener = await alice_inbox.get()
    assert (data, reply_source, listener) == (RESPONSE, bob_target, alice.listeners[0])
    assert alice.connection_count == bob.connection_count == 1


async def test_untrusted_server_certificate_is_a_send_error(
    make_transport: MakeTransport, server_tls: ssl.SSLContext
) -> None:
    recorder = Recorder()
    bob, bob_inbox = await make_transport(["tls:127.0.0.1:0"], tls_server=server_tls)
    # Alice trusts the system CAs only, not the throwaway CA.
    alice, _ = await make_transport(["udp:127.0.0.1:0"], on_error=recorder.on_error)
    target = Target("tls", "127.0.0.1", bob.listeners[0].port)
    alice.send(sip_message(1), target)
    got_target, message = await recorder.error()
    assert got_target == target
    assert "certificate verify failed" in message
    assert alice.connection_count == 0
    assert bob_inbox.queue.empty()


@needs_ipv6
async def test_tls_over_ipv6(
    make_transport: MakeTransport, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    alice, alice_inbox = await make_transport(
        ["tls:[::1]:0"], tls_server=server_tls, tls_client=client_tls
    )
    bob, bob_inbox = await make_transport(["tls:[::1]:0"], tls_server=server_tls)
    bob_target = Target("tls", "::1", bob.listeners[0].port)
    alice.send(sip_message(1), bob_target)
    data, source, _ = await bob_inbox.get()
    assert data == sip_message(1) and source.host == "::1"
    bob.send(RESPONSE, source)
    assert (await alice_inbox.get())[0] == RESPONSE


async def test_a_plain_tcp_client_fails_the_handshake_alone(
    make_transport: MakeTransport,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, inbox = await make_transport(["tls:127.0.0.1:0"], tls_server=server_tls)
    port = transport.listeners[0].port
    good_reader, good = await asyncio.open_connection("127.0.0.1", port, ssl=client_tls)
    plain_reader, plain = await asyncio.open_connection("127.0.0.1", port)
    try:
        with caplog.at_level(logging.INFO, logger="uaconsole.transport"):
            plain.write(sip_message(1))  # not a TLS ClientHello
            assert await read_eof(plain_reader) == b""
        assert "TLS handshake from" in caplog.text
        good.write(sip_message(2))
        data, source, _ = await inbox.get()
        assert data == sip_message(2)
        transport.send(RESPONSE, source)
        assert await read_exactly(good_reader, len(RESPONSE)) == RESPONSE
        assert transport.connection_count == 1
    finally:
        for writer in (good, plain):
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def test_stop_aborts_a_handshake_in_progress(server_tls: ssl.SSLContext) -> None:
    transport = SipTransport(lambda *_: None, tls_server=server_tls)
    (listener,) = await transport.start([ListenSpec("tls", "127.0.0.1", 0)])
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        # No ClientHello is sent, so the handshake waits: stop() must end it all the same.
        await asyncio.wait_for(transport.stop(), 1.0)
        assert await read_eof(reader) == b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
