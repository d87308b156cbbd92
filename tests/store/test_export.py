"""Exports: JSON lines, CSV, pcap (read back by tshark), a SIPp scenario (replayed by SIPp
against ``uaconsole serve``), and redaction."""

import asyncio
import csv
import json
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest

from engine.api.engine import Engine
from engine.store import EventLog, History, export_session
from engine.store.redact import Redactor
from engine.store.sipp import scenario
from tests.conftest import require_tool

from .conftest import WAIT, engine_config, free_udp_port, loopback_call, serve_process


@pytest.fixture
async def logged_call(engine: Engine, tmp_path: Path) -> tuple[History, str, str]:
    """A loopback call in a fresh log: (history, UAC key, UAS key)."""
    log = EventLog(tmp_path / "log.db")
    await log.start(engine)
    uac, uas = await loopback_call(engine, caller="Alice 5551234567,sip:+14155550123@127.0.0.1")
    await engine.stop()
    await log.stop()
    history = History.open(tmp_path / "log.db")
    yield history, uac, uas
    history.close()


def test_jsonl_has_the_session_then_events_and_messages_in_time_order(
    logged_call: tuple[History, str, str], tmp_path: Path
) -> None:
    history, _, uas = logged_call
    out = tmp_path / "call.jsonl"
    export_session(history, uas, "jsonl", out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["type"] == "session" and records[0]["key"] == uas
    kinds = [r["type"] for r in records[1:]]
    assert kinds.count("event") == len(history.events(uas))
    assert kinds.count("message") == len(history.ladder(uas))
    times = [r["time"] for r in records[1:]]
    assert times == sorted(times)
    first = next(r for r in records if r["type"] == "message")
    assert first["data"].startswith("INVITE sip:bob@127.0.0.1:")


def test_csv_has_one_row_per_event_and_message(
    logged_call: tuple[History, str, str], tmp_path: Path
) -> None:
    history, uac, _ = logged_call
    out = tmp_path / "call.csv"
    export_session(history, uac, "csv", out)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(history.events(uac)) + len(history.ladder(uac))
    assert {r["kind"] for r in rows} == {"event", "message"}
    assert rows[0]["summary"].startswith("INVITE sip:bob@")
    assert "\r\n" in rows[0]["data"]  # the whole message, quoted


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "pcap", "sipp"])
def test_redact_removes_numbers_and_addresses(
    logged_call: tuple[History, str, str], tmp_path: Path, fmt: str
) -> None:
    history, _, uas = logged_call
    out = tmp_path / f"call.{fmt}"
    export_session(history, uas, fmt, out, redact=True)
    data = out.read_bytes()
    for secret in (b"127.0.0.1", b"4155550123", b"5551234567", bytes([127, 0, 0, 1])):
        assert secret not in data, (fmt, secret)
    if fmt == "jsonl":
        assert b"192.0.2.1" in data


def test_redacted_messages_keep_a_correct_content_length() -> None:
    body = "v=0\r\nc=IN IP4 10.20.30.40\r\nm=audio 4000 RTP/AVP 0\r\n"
    message = (
        "INVITE sip:+4930123456@10.20.30.40:5060 SIP/2.0\r\n"
        'From: "Ann 0301234567" <sip:ann@[2001:db8:abcd::17]>;tag=1\r\n'
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    r = Redactor()
    out = r.message(message).decode()
    head, body_out = out.split("\r\n\r\n", 1)
    assert int(re.search(r"Content-Length: (\d+)", head).group(1)) == len(body_out.encode())
    assert "10.20.30.40" not in out and "4930123456" not in out and "0301234567" not in out
    assert "2001:db8:abcd::17" not in out
    assert r.ip("10.20.30.40") == "192.0.2.1"  # the same stand-in every time
    assert "sip:+0000000001@192.0.2.1:5060" in out


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    data = path.read_bytes()
    magic, major, minor, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)
    packets, offset = [], 24
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[offset : offset + 16])
        assert incl == orig
        packets.append((sec + usec / 1e6, data[offset + 16 : offset + 16 + incl]))
        offset += 16 + incl
    return packets


def test_pcap_holds_each_message_with_its_addresses_and_time(
    logged_call: tuple[History, str, str], tmp_path: Path
) -> None:
    history, uac, _ = logged_call
    out = tmp_path / "call.pcap"
    export_session(history, uac, "pcap", out)
    ladder = history.ladder(uac)
    packets = read_pcap(out)
    assert len(packets) == len(ladder)
    for (when, frame), m in zip(packets, ladder, strict=True):
        assert abs(when - m["time"]) < 1e-6
        assert frame[12:14] == b"\x08\x00"  # IPv4
        assert frame[14 + 12 : 14 + 20] == bytes([127, 0, 0, 1]) * 2
        assert frame.endswith(m["data"])


def test_tshark_lists_the_calls_sip_messages(
    logged_call: tuple[History, str, str], tmp_path: Path
) -> None:
    tshark = require_tool("tshark")
    history, uac, _ = logged_call
    out = tmp_path / "call.pcap"
    export_session(history, uac, "pcap", out)
    result = subprocess.run(
        [tshark, "-r", str(out), "-d", "udp.port==0-65535,sip", "-T", "fields",
         "-e", "ip.src", "-e", "udp.dstport", "-e", "sip.Method", "-e", "sip.Status-Code",
         "-e", "sip.Call-ID", "-o", "udp.check_checksum:TRUE"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    ladder = history.ladder(uac)
    assert len(lines) == len(ladder)
    wanted = [m["first_line"].split()[0] if not m["first_line"].startswith("SIP/") else
              m["first_line"].split()[1] for m in ladder]  # fmt: skip
    assert [line[2] or line[3] for line in lines] == wanted
    assert {line[4] for line in lines} == {history.session(uac)["callid"]}
    # tshark's own summary, as a person would run it
    plain = subprocess.run([tshark, "-r", str(out)], capture_output=True, text=True, timeout=60)
    assert "INVITE" in plain.stdout or "SIP" in plain.stdout


def test_pcap_over_tcp_and_ipv6_is_read_by_tshark(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    from engine.store.pcap import Endpoint, PcapWriter

    a, b = Endpoint("::1", 5060), Endpoint("::1", 5070)
    c, d = Endpoint("127.0.0.1", 5060), Endpoint("127.0.0.2", 5080)
    msg = (b"OPTIONS sip:x@[::1] SIP/2.0\r\nCall-ID: tcp6\r\nCSeq: 1 OPTIONS\r\n"
           b"Content-Length: 0\r\n\r\n")  # fmt: skip
    out = tmp_path / "mixed.pcap"
    with out.open("wb") as f:
        w = PcapWriter(f)
        w.write(1.0, "udp", a, b, msg)
        w.write(2.0, "tcp", c, d, msg)
        w.write(3.0, "tcp", d, c, msg.replace(b"tcp6", b"back"))
    result = subprocess.run(
        [tshark, "-r", str(out), "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
         "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "sip.Call-ID",
         "-e", "_ws.expert.message"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == ["tcp6", "tcp6", "back"]
    assert not any("checksum" in r[1].lower() and "bad" in r[1].lower() for r in rows if len(r) > 1)


def sipp_run(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    sipp = require_tool("sipp")
    return subprocess.run(
        [sipp, *args, "-nostdin", "-timeout", "30s", "-trace_err"],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def sipp_failure(result: subprocess.CompletedProcess, cwd: Path) -> str:
    errors = "".join(p.read_text() for p in cwd.glob("*errors.log"))
    return f"sipp exit {result.returncode}\n{errors}\n{result.stdout[-2000:]}"


def test_a_sipp_scenario_of_a_received_call_replays_against_serve(tmp_path: Path) -> None:
    require_tool("sipp")
    port, sipp_port = free_udp_port(), free_udp_port()
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    with serve_process(port, "--db", str(first), log=tmp_path / "serve1.log"):
        result = sipp_run(["-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1",
                           "-p", str(sipp_port), "-m", "1", "-d", "300"], tmp_path)  # fmt: skip
        assert result.returncode == 0, sipp_failure(result, tmp_path)
    history = History.open(first)
    (session,) = history.sessions()
    scenario = tmp_path / "replay.xml"
    export_session(history, session["key"], "sipp", scenario)
    original = [m["first_line"].split(" ")[0] for m in history.ladder(session["key"])]
    history.close()
    assert '<pause milliseconds="3' in scenario.read_text()  # the call's 300 ms, kept

    with serve_process(port, "--db", str(second), log=tmp_path / "serve2.log"):
        result = sipp_run(["-sf", str(scenario), f"127.0.0.1:{port}", "-i", "127.0.0.1",
                           "-p", str(free_udp_port()), "-m", "2"], tmp_path)  # fmt: skip
        assert result.returncode == 0, sipp_failure(result, tmp_path)
    history = History.open(second)
    replayed = history.sessions()
    assert len(replayed) == 2
    for s in replayed:
        assert (s["state"], s["final_status"], s["ended_by"]) == ("TERMINATED", 200, "remote")
        assert [m["first_line"].split(" ")[0] for m in history.ladder(s["key"])] == original
    history.close()


async def test_a_sipp_scenario_of_a_placed_call_plays_the_callee(
    engine: Engine, tmp_path: Path
) -> None:
    """The engine calls SIPp's own uas; the exported scenario then plays that callee for a
    second call of the engine."""
    sipp = require_tool("sipp")
    log = EventLog(tmp_path / "log.db")
    await log.start(engine)

    async def call_sipp(args: list[str]) -> str:
        port = free_udp_port()
        process = await asyncio.create_subprocess_exec(
            sipp, *args, "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin",
            "-timeout", "30s", "-trace_err", cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        await asyncio.sleep(0.5)  # SIPp binds its port
        events = engine.events()
        key = await engine.client_start(
            f"sip:service@127.0.0.1:{port}", f"sip:service@127.0.0.1:{port}",
            "Operator,sip:operator@127.0.0.1",
        )  # fmt: skip

        async def until(kind: str) -> None:
            async for e in events:
                if getattr(e, "key", None) == key and e.event_type == kind:
                    return

        await asyncio.wait_for(until("ANSWERED"), WAIT)
        await engine.terminate(key)
        await asyncio.wait_for(until("TERMINATED"), WAIT)
        events.close()
        out, _ = await asyncio.wait_for(process.communicate(), 40)
        assert process.returncode == 0, out.decode()[-2000:]
        return key

    first = await call_sipp(["-sn", "uas"])
    await asyncio.sleep(0.3)  # in the file
    history = History.open(tmp_path / "log.db")
    scenario = tmp_path / "callee.xml"
    export_session(history, first, "sipp", scenario)
    history.close()
    assert "[last_Via:]" in scenario.read_text()
    second = await call_sipp(["-sf", str(scenario)])
    await engine.stop()
    await log.stop()
    history = History.open(tmp_path / "log.db")
    flows = [
        [" ".join(m["first_line"].split(" ")[:2]) for m in history.ladder(k)]
        for k in (first, second)
    ]
    flows = [[f.split(" ")[1] if f.startswith("SIP/") else f.split(" ")[0] for f in flow]
             for flow in flows]  # fmt: skip
    assert flows[0] == flows[1]
    assert flows[0] == ["INVITE", "180", "200", "ACK", "BYE", "200"]
    assert history.session(second)["final_status"] == 200
    history.close()


async def test_a_sipp_scenario_of_a_rejected_call_acks_on_the_invites_branch(
    tmp_path: Path,
) -> None:
    """A call the engine rejected (486): the replayed ACK must match the INVITE's transaction
    (same branch, ``[branch-N]``), or the engine would retransmit its 486."""
    require_tool("sipp")
    callee = Engine(engine_config().with_incoming("manual"))  # the operator rejects
    caller = Engine(engine_config())
    await callee.start()
    await caller.start()
    log = EventLog(tmp_path / "first.db")
    await log.start(callee)
    events, incoming = caller.events(), callee.events()
    port = callee.listeners[0].port
    key = await caller.client_start(f"sip:bob@127.0.0.1:{port}", "sip:bob@127.0.0.1",
                                    "sip:alice@127.0.0.1")  # fmt: skip

    async def reject() -> None:
        async for e in incoming:
            if getattr(e, "event_type", None) == "NEW":
                await callee.reply(e.key, "INVITE", 486, "Busy Here")
                return

    async def rejected() -> None:
        async for e in events:
            if getattr(e, "key", None) == key and e.event_type == "TERMINATED":
                return

    await asyncio.wait_for(asyncio.gather(reject(), rejected()), WAIT)
    await asyncio.sleep(0.2)
    await caller.stop()
    await callee.stop()
    await log.stop()
    history = History.open(tmp_path / "first.db")
    (session,) = history.sessions()
    assert session["final_status"] == 486
    xml = scenario(session, history.ladder(session["key"]))
    history.close()
    assert re.search(r"branch=\[branch-\d+\]", xml), xml
    (tmp_path / "rejected.xml").write_text(xml)

    port = free_udp_port()
    second = tmp_path / "second.db"
    replay = ["-sf", str(tmp_path / "rejected.xml"), f"127.0.0.1:{port}", "-i", "127.0.0.1",
              "-p", str(free_udp_port()), "-m", "1"]  # fmt: skip
    log_file = tmp_path / "serve.log"
    with serve_process(port, "--db", str(second), log=log_file, incoming="reject:486"):
        result = sipp_run(replay, tmp_path)
        assert result.returncode == 0, sipp_failure(result, tmp_path)
        time.sleep(1.2)  # a 486 not ACKed would be sent again after T1 (0.5 s)
    history = History.open(second)
    (replayed,) = history.sessions()  # the policy refused it: no engine session, a log one
    assert replayed["key"].startswith("refused:") and replayed["state"] == "TERMINATED"
    flow = [m["first_line"] for m in history.ladder(replayed["key"])]
    history.close()
    assert [f.split(" ")[0] if not f.startswith("SIP/") else f.split(" ")[1] for f in flow] == [
        "INVITE", "486", "ACK"
    ], flow  # fmt: skip
    assert replayed["final_status"] == 486
