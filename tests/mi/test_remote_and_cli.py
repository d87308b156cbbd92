"""The remote engine (an MI client with the Engine's command methods) and ``uaconsole mi``."""

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from engine.api.engine import Engine
from engine.api.remote import RemoteEngine, RemoteUnavailable
from engine.api.streams import Gap
from engine.mi.cli import build_params, main
from engine.mi.server import MiServer
from engine.ua.errors import CommandError

from .conftest import HOST, SDP_OFFER, TOKEN, WAIT, MakeMi, Rpc, Sipp

ROOT = Path(__file__).resolve().parents[2]


async def remote_event(reader, key: str, event_type: str):  # type: ignore[no-untyped-def]
    while True:
        item = await asyncio.wait_for(reader.get(), WAIT)
        if not isinstance(item, Gap) and item.key == key and item.event_type == event_type:
            return item


@pytest.mark.interop
@pytest.mark.parametrize("mode", ["websocket", "udp"])
async def test_remote_engine_drives_a_call(
    mi: tuple[MiServer, Rpc], sipp_reinvite: Sipp, mode: str
) -> None:
    server, rpc = mi
    remote = RemoteEngine(server.url, events=mode)
    await remote.start()
    try:
        assert remote.is_uaconsole
        reader = remote.events()
        await asyncio.sleep(0.2)  # the feed connects / subscribes
        key = await remote.client_start(
            sipp_reinvite.uri, f"sip:bob@{HOST}", f"sip:alice@{HOST}", body=SDP_OFFER, flags="b"
        )
        early = await remote_event(reader, key, "EARLY")
        assert (early.status, early.entity_type) == (180, "UAC")
        answered = await remote_event(reader, key, "ANSWERED")
        assert answered.body and "m=audio" in answered.body
        (info,) = await remote.sessions()
        assert info.key == key and info.state_name in ("CONFIRMED", "ESTABLISHED")
        assert (await remote.session(key)).callid == key
        await remote.update(key, "INVITE", body=SDP_OFFER)
        reinvite = await remote_event(reader, key, "ANSWERED")
        assert reinvite.method == "INVITE"
        await remote.terminate(key)
        ended = await remote_event(reader, key, "TERMINATED")
        assert ended.origin == "local"
        with pytest.raises(CommandError) as info_error:
            await remote.terminate(key)
        assert (info_error.value.code, info_error.value.message) == (
            500,
            "Failed to terminate session",
        )
        with pytest.raises(CommandError) as info_error:
            await remote.session("nonsense")
        assert info_error.value.code == 400
    finally:
        await remote.stop()
    if mode == "udp":
        assert await rpc("subscribers_list") == {"Events": []}


async def test_remote_engine_unreachable() -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    remote = RemoteEngine(f"http://{HOST}:{port}/mi", timeout=2)
    with pytest.raises(RemoteUnavailable):
        await remote.start()


async def test_remote_engine_with_token(make_mi: MakeMi) -> None:
    server, _ = await make_mi(token=TOKEN)
    with pytest.raises(RemoteUnavailable, match="401"):
        await RemoteEngine(server.url).start()
    remote = RemoteEngine(server.url, token=TOKEN)
    await remote.start()
    assert await remote.sessions() == []
    await remote.stop()


# -- uaconsole mi ----------------------------------------------------------------------------------


def test_build_params() -> None:
    assert build_params(["key=a", "method=INVITE"]) == {"key": "a", "method": "INVITE"}
    assert build_params(["a", "sip:x@y;p=1"]) == ["a", "sip:x@y;p=1"]
    assert build_params(["extra_headers=X: a=b\r\n"]) == {"extra_headers": "X: a=b\r\n"}
    with pytest.raises(ValueError):
        build_params(["key=a", "b"])


async def test_mi_command_prints_json(
    mi: tuple[MiServer, Rpc], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = mi
    assert await asyncio.to_thread(main, ["--url", server.url, "ua_session_list"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert await asyncio.to_thread(main, ["--url", server.url, "which", "command=ps"]) == 0
    assert json.loads(capsys.readouterr().out) == [[]]


async def test_mi_command_error_exit_1(
    mi: tuple[MiServer, Rpc], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = mi
    code = await asyncio.to_thread(
        main, ["--url", server.url, "ua_session_terminate", "key=B2B.1.1.1.0123456789abcdef"]
    )
    assert code == 1
    assert "500: Failed to terminate session" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["--url", server.url, "nope"]) == 1
    assert "-32601: Method not found" in capsys.readouterr().err


async def test_mi_command_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert await asyncio.to_thread(main, ["version", "a=b", "c"]) == 2
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    assert await asyncio.to_thread(main, ["--url", f"http://{HOST}:{port}/mi", "version"]) == 1
    assert "cannot reach" in capsys.readouterr().err


async def test_mi_command_with_token_file(
    make_mi: MakeMi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = await make_mi(token=TOKEN)
    assert await asyncio.to_thread(main, ["--url", server.url, "version"]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    code = await asyncio.to_thread(
        main, ["--url", server.url, "--token-file", str(path), "version"]
    )
    assert code == 0 and "UA Console" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def test_serve_starts_the_control_api_and_uaconsole_mi_reaches_it(engine: Engine) -> None:
    """``uaconsole serve --mi-listen`` end to end, then ``uaconsole mi`` in another process."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gui.launcher", "serve", "--listen", f"udp:{HOST}:0",
        "--mi-listen", f"{HOST}:{port}", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        for _ in range(5):
            line = (await asyncio.wait_for(serve.stdout.readline(), WAIT)).decode()
            if "control API" in line:
                break
        assert f"http://{HOST}:{port}/mi" in line
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gui.launcher", "mi", "--url", f"http://{HOST}:{port}/mi",
            "events_list", stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(client.communicate(), WAIT)
        assert client.returncode == 0
        assert {"name": "E_UA_SESSION", "id": 0} in json.loads(out)["Events"]
    finally:
        serve.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(serve.wait(), WAIT) == 0


async def test_serve_refuses_an_exposed_listener_without_token() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gui.launcher", "serve", "--mi-listen", "0.0.0.0:8888",
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 2
    assert b"needs a token" in err
