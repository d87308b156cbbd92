"""Real OpenSIPS clients, unchanged, drive the engine against SIPp (MI-API.md, issue section 3).

- the ``opensips`` package's ``OpenSIPSMI`` over HTTP, and its ``OpenSIPSEventHandler`` with a
  ``datagram`` subscription (it subscribes with positional parameters [event, socket, expire]);
- ``opensips-cli -x mi ...`` as a subprocess.

These clients are synchronous (urllib, threads), so they run in worker threads while the event
loop serves the MI requests.
"""

import asyncio
import json
import os
import queue
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from opensips.event import OpenSIPSEventHandler
from opensips.mi import OpenSIPSMI, OpenSIPSMIException

from engine.api.engine import Engine
from engine.mi.server import MiServer

from .conftest import HOST, SDP_OFFER, WAIT, MakeMi, Rpc, Sipp, event_of

pytestmark = pytest.mark.interop

OPENSIPS_FIELDS = [
    "key",
    "event_type",
    "entity_type",
    "status",
    "reason",
    "method",
    "body",
    "headers",
]
ENGINE_FIELDS = ["seq", "time", "callid", "from_tag", "to_tag", "origin"]


def notifications_of(inbox: "queue.Queue[Any]", key: str, event_type: str) -> dict[str, Any]:
    """The next E_UA_SESSION notification of ``key`` and ``event_type`` the handler got."""
    while True:
        note = inbox.get(timeout=WAIT)
        assert note is not None, "the event handler lost its subscription"
        params = note["params"]
        if params["key"] == key and params["event_type"] == event_type:
            return note


async def test_opensips_mi_and_event_handler_drive_a_call(
    mi: tuple[MiServer, Rpc], sipp_reinvite: Sipp
) -> None:
    server, rpc = mi
    client = OpenSIPSMI("http", url=server.url)
    handler = OpenSIPSEventHandler(client, "datagram", ip=HOST, port=0)
    inbox: queue.Queue[Any] = queue.Queue()
    subscription = await asyncio.to_thread(handler.subscribe, "E_UA_SESSION", inbox.put)
    try:
        listed = await rpc("subscribers_list")
        sockets = [s["socket"] for s in listed["Events"][0]["Subscribers"]]
        assert subscription.socket.sock_name in sockets

        key = await asyncio.to_thread(
            client.execute,
            "ua_session_client_start",
            {
                "ruri": sipp_reinvite.uri,
                "to": f"Bob,sip:bob@{HOST}:{sipp_reinvite.port}",
                "from": f"sip:alice@{HOST}",
                "body": SDP_OFFER,
                "flags": "b",
            },
        )
        assert isinstance(key, str) and key.startswith("B2B.")

        early = await asyncio.to_thread(notifications_of, inbox, key, "EARLY")
        assert early["jsonrpc"] == "2.0" and early["method"] == "E_UA_SESSION" and "id" not in early
        params = early["params"]
        assert list(params)[:8] == OPENSIPS_FIELDS
        assert list(params)[8:] == ENGINE_FIELDS
        assert (params["entity_type"], params["status"], params["reason"], params["method"]) == (
            "UAC",
            180,
            "Ringing",
            "INVITE",
        )
        assert params["body"] is None and params["headers"] is None
        assert params["callid"] == key and params["origin"] == "remote"

        answered = (await asyncio.to_thread(notifications_of, inbox, key, "ANSWERED"))["params"]
        assert (answered["status"], answered["reason"], answered["method"]) == (200, "OK", "INVITE")
        assert "m=audio" in answered["body"]
        assert isinstance(answered["seq"], int) and answered["seq"] > params["seq"]
        assert isinstance(answered["time"], float) and answered["to_tag"]

        one = await asyncio.to_thread(client.execute, "ua_session_list", {"key": key})
        assert one["key"] == key and one["entity_type"] == "UAC" and one["callid"] == key
        assert one["state_name"] in ("CONFIRMED", "ESTABLISHED") and one["state"] in (4, 5)
        every = await asyncio.to_thread(client.execute, "ua_session_list")
        assert [s["key"] for s in every] == [key]

        result = await asyncio.to_thread(
            client.execute,
            "ua_session_update",
            {"key": key, "method": "INVITE", "body": SDP_OFFER.replace("1000 1000", "1000 1001")},
        )
        assert result == "OK"
        reinvite = (await asyncio.to_thread(notifications_of, inbox, key, "ANSWERED"))["params"]
        assert (reinvite["method"], reinvite["status"]) == ("INVITE", 200)
        assert "a=sendonly" in reinvite["body"]

        result = await asyncio.to_thread(client.execute, "ua_session_terminate", {"key": key})
        assert result == "OK"
        ended = (await asyncio.to_thread(notifications_of, inbox, key, "TERMINATED"))["params"]
        assert ended["origin"] == "local"

        with pytest.raises(OpenSIPSMIException, match="500: Failed to terminate session"):
            await asyncio.to_thread(client.execute, "ua_session_terminate", {"key": key})
    finally:
        await asyncio.to_thread(subscription.unsubscribe)
    listed = await rpc("subscribers_list")
    assert listed == {"Events": []}


async def test_event_handler_receives_a_call_to_sipp_uas(
    mi: tuple[MiServer, Rpc], sipp_uas: Sipp, engine: Engine
) -> None:
    """SIPp's own ``-sn uas``: EARLY and ANSWERED reach a datagram subscriber; terminate BYEs."""
    server, _ = mi
    client = OpenSIPSMI("http", url=server.url)
    handler = OpenSIPSEventHandler(client, "datagram", ip=HOST, port=0)
    inbox: queue.Queue[Any] = queue.Queue()
    subscription = await asyncio.to_thread(handler.subscribe, "E_UA_SESSION", inbox.put, 60)
    reader = engine.events()
    try:
        key = await asyncio.to_thread(
            client.execute,
            "ua_session_client_start",
            [sipp_uas.uri, f"sip:service@{HOST}:{sipp_uas.port}", f"sip:alice@{HOST}"],
        )
        for kind, status in (("EARLY", 180), ("ANSWERED", 200)):
            note = await asyncio.to_thread(notifications_of, inbox, key, kind)
            assert note["params"]["status"] == status
        await asyncio.to_thread(client.execute, "ua_session_terminate", [key])
        await event_of(reader, key, "TERMINATED")
    finally:
        reader.close()
        await asyncio.to_thread(subscription.unsubscribe)


def _cli() -> str:
    path = Path(sys.executable).parent / "opensips-cli"
    if path.exists():
        return str(path)
    found = shutil.which("opensips-cli")
    if found is None:
        pytest.fail("opensips-cli is not installed: pip install -e '.[test]'")
    return found


async def opensips_cli(url: str, home: Path, *args: str) -> tuple[int, str, str]:
    """Run ``opensips-cli -x mi ARGS`` against ``url``; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        _cli(), "-o", "communication_type=http", "-o", f"url={url}", "-x", "mi", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode(), err.decode()


async def test_opensips_cli_drives_a_call(
    make_mi: MakeMi, sipp_reinvite: Sipp, engine: Engine, tmp_path: Path
) -> None:
    server, _ = await make_mi()
    reader = engine.events()
    code, out, err = await opensips_cli(
        server.url, tmp_path, "ua_session_client_start", f"ruri={sipp_reinvite.uri}",
        f"to=sip:bob@{HOST}:{sipp_reinvite.port}", f"from=sip:alice@{HOST}",
        f"body={SDP_OFFER}",
    )  # fmt: skip
    assert code == 0, err
    key = json.loads(out)
    early = await event_of(reader, key, "EARLY")
    assert early.status == 180
    answered = await event_of(reader, key, "ANSWERED")
    assert answered.status == 200

    code, out, err = await opensips_cli(server.url, tmp_path, "ua_session_list", f"key={key}")
    assert code == 0, err
    assert json.loads(out)["key"] == key

    code, out, err = await opensips_cli(
        server.url, tmp_path, "ua_session_update", f"key={key}", "method=INVITE",
        f"body={SDP_OFFER}",
    )  # fmt: skip
    assert (code, json.loads(out)) == (0, "OK"), err
    reinvite = await event_of(reader, key, "ANSWERED")
    assert (reinvite.method, reinvite.status) == ("INVITE", 200)

    code, out, err = await opensips_cli(server.url, tmp_path, "ua_session_terminate", key)
    assert (code, json.loads(out)) == (0, "OK"), err
    await event_of(reader, key, "TERMINATED")

    code, out, err = await opensips_cli(server.url, tmp_path, "ua_session_terminate", key)
    assert code != 0
    assert "500: Failed to terminate session" in err
    code, out, err = await opensips_cli(server.url, tmp_path, "which")
    assert code == 0 and "ua_session_client_start" in json.loads(out)
    reader.close()
