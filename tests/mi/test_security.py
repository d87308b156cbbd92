"""Each security rule of the control API, one refusal per test (issue section 4).

Every test that sends a refused command also watches the engine's SIP messages: nothing may be
sent for a refused request.
"""

import json
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from engine.api.engine import Engine
from engine.mi.config import MiConfig, from_dict, mi_config_from_args, read_token_file
from engine.mi.security import Guard
from engine.mi.server import MiServer
from engine.ua.policy import ConfigError

from .conftest import HOST, TOKEN, MakeMi, Rpc, Sink, watching

VERSION = json.dumps({"jsonrpc": "2.0", "method": "version", "id": 1})


# -- configuration ---------------------------------------------------------------------------------


def test_non_loopback_listener_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="needs a token"):
        MiConfig(host="0.0.0.0").check()
    with pytest.raises(ConfigError, match="needs a token"):
        from_dict({"listen": "192.0.2.10:8888"}).check()
    assert MiConfig(host="0.0.0.0", token=TOKEN).check().token == TOKEN
    assert MiConfig(host="::1").check().loopback


def test_token_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="mode 0644"):
        read_token_file(path, "--mi-token-file")
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_token_file(path, "--mi-token-file")
    path.chmod(0o600)
    assert read_token_file(path, "--mi-token-file") == TOKEN


def test_short_or_missing_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("short")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="at least 16"):
        read_token_file(path, "mi.token_file")
    with pytest.raises(ConfigError, match="cannot read"):
        read_token_file(tmp_path / "absent", "mi.token_file")


def test_flags_and_toml(tmp_path: Path) -> None:
    import argparse

    from engine.mi.config import add_mi_arguments

    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[mi]\nlisten = "127.0.0.1:9999"\nclient_start_rate = 5\nallow_headers = ["route"]\n'
        '[[mi.webhooks]]\nurl = "http://127.0.0.1:1/x"\nevent_types = ["answered"]\n'
    )
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    add_mi_arguments(parser)
    args = parser.parse_args(
        ["--config", str(toml), "--mi-listen", "[::1]:8000", "--mi-token-file", str(token)]
    )
    config = mi_config_from_args(args)
    assert (config.host, config.port, config.token) == ("::1", 8000, TOKEN)
    assert config.client_start_rate == 5 and config.allow_headers == ("Route",)
    assert config.webhooks[0].event_types == ("ANSWERED",)
    assert not mi_config_from_args(parser.parse_args(["--no-mi"])).enabled
    with pytest.raises(ConfigError, match="--mi-listen"):
        mi_config_from_args(parser.parse_args(["--mi-listen", "nowhere"]))
    with pytest.raises(ConfigError, match=r"mi\.nope"):
        from_dict({"nope": 1})
    with pytest.raises(ConfigError, match="not an engine-owned header"):
        from_dict({"allow_headers": ["X-Foo"]})


# -- bearer token ----------------------------------------------------------------------------------


@pytest.fixture
async def guarded(make_mi: MakeMi) -> tuple[MiServer, Rpc]:
    return await make_mi(token=TOKEN)


async def test_missing_token_401(guarded: tuple[MiServer, Rpc]) -> None:
    status, text = await guarded[1].post(VERSION)
    assert status == 401 and "Bearer" in text


async def test_wrong_token_401(guarded: tuple[MiServer, Rpc]) -> None:
    status, _ = await guarded[1].post(VERSION, {"Authorization": "Bearer " + "x" * len(TOKEN)})
    assert status == 401


async def test_token_in_wrong_scheme_401(guarded: tuple[MiServer, Rpc]) -> None:
    status, _ = await guarded[1].post(VERSION, {"Authorization": f"Basic {TOKEN}"})
    assert status == 401


async def test_right_token_200(guarded: tuple[MiServer, Rpc]) -> None:
    status, answer = await guarded[1].post(VERSION, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "Server" in answer["result"]


async def test_websocket_without_token_401(guarded: tuple[MiServer, Rpc]) -> None:
    server, rpc = guarded
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await rpc.session.ws_connect(server.events_url)
    assert info.value.status == 401


# -- Host and Origin -------------------------------------------------------------------------------


async def test_foreign_host_403(rpc: Rpc) -> None:
    status, text = await rpc.post(VERSION, {"Host": "attacker.example:8888"})
    assert status == 403 and "attacker.example" in text


async def test_host_with_wrong_port_403(mi: tuple[MiServer, Rpc]) -> None:
    server, rpc = mi
    status, _ = await rpc.post(VERSION, {"Host": f"{HOST}:{server.port + 1}"})
    assert status == 403


async def test_other_loopback_address_as_host_403(mi: tuple[MiServer, Rpc]) -> None:
    server, rpc = mi
    status, _ = await rpc.post(VERSION, {"Host": f"127.0.0.2:{server.port}"})
    assert status == 403


async def test_localhost_and_own_address_are_accepted(mi: tuple[MiServer, Rpc]) -> None:
    server, rpc = mi
    for host in (f"localhost:{server.port}", f"{HOST}:{server.port}", HOST):
        status, _ = await rpc.post(VERSION, {"Host": host})
        assert status == 200, host


async def test_allowed_host_name(make_mi: MakeMi) -> None:
    server, rpc = await make_mi(allowed_hosts=("console.test",))
    assert (await rpc.post(VERSION, {"Host": f"console.test:{server.port}"}))[0] == 200
    assert (await rpc.post(VERSION, {"Host": f"other.test:{server.port}"}))[0] == 403


def test_wildcard_listener_accepts_addresses_not_names() -> None:
    guard = Guard(MiConfig(host="0.0.0.0", port=8888, token=TOKEN))
    assert guard.host_problem("192.0.2.7:8888") is None
    assert guard.host_problem("[2001:db8::1]:8888") is None
    assert guard.host_problem("rebind.example:8888") is not None
    assert guard.host_problem(None) is not None
    assert guard.host_problem("a:b:c") is not None


async def test_origin_not_allowed_403(rpc: Rpc) -> None:
    status, text = await rpc.post(VERSION, {"Origin": "http://evil.example"})
    assert status == 403 and "Origin" in text


async def test_null_origin_403(rpc: Rpc) -> None:
    status, _ = await rpc.post(VERSION, {"Origin": "null"})
    assert status == 403


async def test_allowed_origin_200(make_mi: MakeMi) -> None:
    _, rpc = await make_mi(allowed_origins=("http://127.0.0.1:8080",))
    assert (await rpc.post(VERSION, {"Origin": "http://127.0.0.1:8080"}))[0] == 200
    assert (await rpc.post(VERSION, {"Origin": "http://127.0.0.1:8081"}))[0] == 403


async def test_websocket_with_foreign_origin_403(mi: tuple[MiServer, Rpc]) -> None:
    server, rpc = mi
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await rpc.session.ws_connect(server.events_url, origin="http://evil.example")
    assert info.value.status == 403


# -- content type and size -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_content_type_must_be_json_415(rpc: Rpc, content_type: str) -> None:
    status, _ = await rpc.post(VERSION, {"Content-Type": content_type})
    assert status == 415


async def test_missing_content_type_415(mi: tuple[MiServer, Rpc]) -> None:
    server, rpc = mi
    async with rpc.session.post(
        server.url, data=VERSION.encode(), skip_auto_headers=["Content-Type"]
    ) as r:
        assert r.status == 415


async def test_body_too_large_413(make_mi: MakeMi) -> None:
    _, rpc = await make_mi(max_request_bytes=1000)
    big = json.dumps({"jsonrpc": "2.0", "method": "version", "id": "x" * 2000})
    status, _ = await rpc.post(big)
    assert status == 413


async def test_chunked_body_too_large_413(make_mi: MakeMi) -> None:
    server, rpc = await make_mi(max_request_bytes=1000)

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 500

    async with rpc.session.post(
        server.url, data=chunks(), headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 413


# -- parameter validation: nothing is sent ---------------------------------------------------------

START = {"to": "sip:bob@127.0.0.1", "from": "sip:alice@127.0.0.1"}


def start_params(sink: Sink, **changes: Any) -> dict[str, Any]:
    return {"ruri": f"sip:bob@{HOST}:{sink.port}", **START, **changes}


async def refused(rpc: Rpc, engine: Engine, method: str, params: Any, parameter: str) -> str:
    """Assert -32602 naming ``parameter`` and no SIP message; the data."""
    async with watching(engine) as seen:
        error = await rpc.error(method, params)
    assert seen == [], seen
    assert (error["code"], error["message"]) == (-32602, "Invalid params"), error
    assert f"parameter '{parameter}'" in error["data"], error
    return error["data"]


@pytest.mark.parametrize(
    "ruri",
    ["bob", "sip:", "sip:bob@", "sip:bob@127.0.0.1\r\nX: y", "sip:bob@host name", "<sip:a@b",
     "sip:bob@127.0.0.1:99999", "mailto:bob", "x" * 3000],
)  # fmt: skip
async def test_ruri_must_be_a_uri(rpc: Rpc, engine: Engine, sink: Sink, ruri: str) -> None:
    await refused(rpc, engine, "ua_session_client_start", start_params(sink, ruri=ruri), "ruri")


@pytest.mark.parametrize("field", ["to", "from"])
@pytest.mark.parametrize(
    "value", ["nobody", "sip:a@b\r\nVia: x", 'Eve" <sip:e@x>,sip:a@b', "sip:a@b\x00", ""]
)
async def test_parties_must_be_uris(
    rpc: Rpc, engine: Engine, sink: Sink, field: str, value: str
) -> None:
    await refused(
        rpc, engine, "ua_session_client_start", start_params(sink, **{field: value}), field
    )


async def test_proxy_must_be_a_sip_uri(rpc: Rpc, engine: Engine, sink: Sink) -> None:
    params = start_params(sink, proxy="tel:+123")
    assert "sip:" in await refused(rpc, engine, "ua_session_client_start", params, "proxy")


async def test_body_size_limit(make_mi: MakeMi, engine: Engine, sink: Sink) -> None:
    _, rpc = await make_mi(max_body_bytes=100)
    params = start_params(sink, body="v" * 101)
    assert "100 bytes" in await refused(rpc, engine, "ua_session_client_start", params, "body")


async def test_body_with_nul(rpc: Rpc, engine: Engine, sink: Sink) -> None:
    await refused(rpc, engine, "ua_session_client_start", start_params(sink, body="a\x00"), "body")


@pytest.mark.parametrize(
    "content_type",
    ["text", "text/plain\r\nX-Injected: 1", "text/plain\r\n", "Content-Type: a/b\r\nX: y\r\n", ""],
)
async def test_content_type_must_be_a_media_type(
    rpc: Rpc, engine: Engine, sink: Sink, content_type: str
) -> None:
    params = start_params(sink, body="x", content_type=content_type)
    await refused(rpc, engine, "ua_session_client_start", params, "content_type")


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ("X-A: 1\nX-B: 2\r\n", "bare CR or LF"),
        ("X-A: 1\rX-B: 2\r\n", "bare CR or LF"),
        ("NoColon\r\n", "is not 'Name: value'"),
        ("Bad Name: 1\r\n", "is not 'Name: value'"),
        ("X-A: a\x00b\r\n", "NUL"),
        ("X-A: a\x07b\r\n", "control character"),
        (": empty name\r\n", "is not 'Name: value'"),
        ("X-A: 1\r\n\r\nINVITE sip:x SIP/2.0\r\n", "is not 'Name: value'"),
        ("".join(f"X-{i}: v\r\n" for i in range(65)), "at most 64"),
    ],
)
async def test_extra_headers_must_be_well_formed(
    rpc: Rpc, engine: Engine, sink: Sink, headers: str, why: str
) -> None:
    params = start_params(sink, extra_headers=headers)
    data = await refused(rpc, engine, "ua_session_client_start", params, "extra_headers")
    assert why in data


async def test_extra_headers_size_limit(make_mi: MakeMi, engine: Engine, sink: Sink) -> None:
    _, rpc = await make_mi(max_header_bytes=64)
    params = start_params(sink, extra_headers="X-Long: " + "a" * 80 + "\r\n")
    assert "64 bytes" in await refused(
        rpc, engine, "ua_session_client_start", params, "extra_headers"
    )


@pytest.mark.parametrize(
    "header",
    ["Via", "From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards", "Contact", "Route",
     "Record-Route", "call-id", "v", "f", "t", "i", "l", "m"],
)  # fmt: skip
async def test_engine_owned_headers_are_refused(
    rpc: Rpc, engine: Engine, sink: Sink, header: str
) -> None:
    params = start_params(sink, extra_headers=f"{header}: <sip:x@127.0.0.1>\r\n")
    data = await refused(rpc, engine, "ua_session_client_start", params, "extra_headers")
    assert "written by the engine" in data


async def test_owned_header_allowed_by_configuration(
    make_mi: MakeMi, engine: Engine, sink: Sink
) -> None:
    _, rpc = await make_mi(allow_headers=("Route",))
    params = start_params(sink, extra_headers="Route: <sip:proxy@127.0.0.1;lr>\r\n")
    await rpc("ua_session_client_start", params)
    assert "Route: <sip:proxy@127.0.0.1;lr>\r\n" in (await sink.get()).decode()
    params = start_params(sink, extra_headers="Via: SIP/2.0/UDP 127.0.0.1\r\n")
    await refused(rpc, engine, "ua_session_client_start", params, "extra_headers")


@pytest.mark.parametrize("flags", ["t 30", "b;h", "x" * 65, "tb\r\n"])
async def test_flags_are_letters_and_digits(
    rpc: Rpc, engine: Engine, sink: Sink, flags: str
) -> None:
    await refused(rpc, engine, "ua_session_client_start", start_params(sink, flags=flags), "flags")


KEY = "B2B.1.1.1700000000.0123456789abcdef"


@pytest.mark.parametrize("method", ["IN VITE", "INVITE\r\n", "", "A" * 40, "INV/ITE"])
async def test_method_must_be_a_token(rpc: Rpc, engine: Engine, method: str) -> None:
    await refused(rpc, engine, "ua_session_update", {"key": KEY, "method": method}, "method")


@pytest.mark.parametrize("code", [99, 700, -1, 100000])
async def test_reply_code_range(rpc: Rpc, engine: Engine, code: int) -> None:
    params = {"key": KEY, "method": "INVITE", "code": code, "reason": "X"}
    await refused(rpc, engine, "ua_session_reply", params, "code")


@pytest.mark.parametrize("reason", ["OK\r\nX-Injected: 1", "O\x00K", "x" * 300])
async def test_reason_is_one_line(rpc: Rpc, engine: Engine, reason: str) -> None:
    params = {"key": KEY, "method": "INVITE", "code": 200, "reason": reason}
    await refused(rpc, engine, "ua_session_reply", params, "reason")


@pytest.mark.parametrize("key", ["B2B\r\n.1", "k\x00", "k" * 300])
async def test_key_is_printable(rpc: Rpc, engine: Engine, key: str) -> None:
    await refused(rpc, engine, "ua_session_terminate", {"key": key}, "key")


# -- limits ----------------------------------------------------------------------------------------


async def test_client_start_rate_limit(make_mi: MakeMi, engine: Engine, sink: Sink) -> None:
    _, rpc = await make_mi(client_start_rate=5)
    for _ in range(5):
        await rpc("ua_session_client_start", start_params(sink))
    async with watching(engine) as seen:
        error = await rpc.error("ua_session_client_start", start_params(sink))
    assert (error["code"], error["message"]) == (503, "Rate limit exceeded")
    assert "5 per second" in error["data"]
    assert seen == []


async def test_default_rate_is_50_per_second() -> None:
    assert MiConfig().client_start_rate == 50


async def test_concurrent_session_cap(make_mi: MakeMi, engine: Engine, sink: Sink) -> None:
    _, rpc = await make_mi(max_sessions=2)
    await rpc("ua_session_client_start", start_params(sink))
    await rpc("ua_session_client_start", start_params(sink))
    async with watching(engine) as seen:
        error = await rpc.error("ua_session_client_start", start_params(sink))
    assert (error["code"], error["message"]) == (503, "Too many sessions")
    assert "2 sessions" in error["data"]
    assert seen == []


# -- TLS -------------------------------------------------------------------------------------------


async def test_tls_listener(make_mi: MakeMi, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    os.chmod(key_path, 0o600)
    server, rpc = await make_mi(tls_certificate=cert_path, tls_key=key_path, token=TOKEN)
    assert server.url.startswith("https://")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    async with rpc.session.post(server.url, data=VERSION, headers=headers, ssl=context) as r:
        assert r.status == 200 and "Server" in (await r.json())["result"]
    plain = server.url.replace("https://", "http://")
    with pytest.raises(aiohttp.ClientError):
        async with rpc.session.post(plain, data=VERSION, headers=headers) as r:
            await r.read()


async def test_server_refuses_to_start_exposed_without_token(engine: Engine) -> None:
    with pytest.raises(ConfigError, match="needs a token"):
        await MiServer(engine, MiConfig(host="0.0.0.0", port=0)).start()
