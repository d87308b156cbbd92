"""The writer: sessions, events and messages of real calls, batches, gap rows, a loop that never
waits on SQLite."""

import asyncio
import sqlite3
import time
from dataclasses import fields
from pathlib import Path

from engine.api import RegistrationEvent
from engine.api.engine import Engine, MessageRecord
from engine.api.streams import Broadcast, Reader
from engine.store import EventLog, History
from engine.store.sink import Sink
from engine.ua.events import SessionEvent

from .conftest import loopback_call


async def test_a_call_is_logged_with_its_sessions_events_and_messages(
    engine: Engine, tmp_path: Path
) -> None:
    log = EventLog(tmp_path / "log.db")
    events = engine.events()
    status = await log.start(engine)
    assert status.ok and status.running and status.error is None
    uac, uas = await loopback_call(engine, caller="Alice,sip:alice@127.0.0.1")
    await engine.stop()
    status = await log.stop()
    assert status.ok and not status.running
    assert status.rows_lost == 0 and status.rows_written > 0

    history = History.open(tmp_path / "log.db")
    out, came_in = history.session(uac), history.session(uas)
    assert out is not None and came_in is not None
    assert out["callid"] == came_in["callid"] == uac
    assert (out["entity_type"], out["direction"]) == ("UAC", "out")
    assert (came_in["entity_type"], came_in["direction"]) == ("UAS", "in")
    for s in (out, came_in):
        assert s["state"] == "TERMINATED"
        assert (s["final_status"], s["final_reason"]) == (200, "OK")
        assert "sip:alice@127.0.0.1" in s["from_party"]
        assert "sip:bob@127.0.0.1" in s["to_party"]
        assert s["ruri"].startswith("sip:bob@127.0.0.1:")
        assert s["created"] <= s["answered"] <= s["ended"]
        assert s["transport"] == "udp" and s["local"].startswith("udp:127.0.0.1:")
    # We hung up the call we placed; the callee side saw the BYE come in.
    assert out["ended_by"] == "local" and came_in["ended_by"] == "remote"

    # Every field of every event, as the engine published them.
    published = []
    while (e := events.get_nowait()) is not None:
        published.append(e)
    logged = [history.events(uac), history.events(uas)]
    rows = sorted((r for rs in logged for r in rs), key=lambda r: r["seq"])
    assert [r["seq"] for r in rows] == [e.seq for e in published]
    for row, event in zip(rows, published, strict=True):
        for f in fields(SessionEvent):
            assert row[f.name] == getattr(event, f.name), f.name

    # Each side's ladder: INVITE, 200, ACK, BYE, 200 with addresses.
    for key, first in ((uac, "out"), (uas, "in")):
        ladder = history.ladder(key)
        flow = [m["first_line"].split()[0] for m in ladder]
        assert flow == ["INVITE", "SIP/2.0", "ACK", "BYE", "SIP/2.0"]
        assert ladder[0]["direction"] == first
        assert all(m["session_key"] == key for m in ladder)
        assert all(m["local"].startswith("udp:127.0.0.1:") for m in ladder)
        assert ladder[0]["data"].startswith(b"INVITE sip:bob@")
        assert [m["time"] for m in ladder] == sorted(m["time"] for m in ladder)
    history.close()


class FakeEngine:
    """The two streams of an engine, published to by the test."""

    def __init__(self) -> None:
        self.event_hub: Broadcast[SessionEvent] = Broadcast()
        self.message_hub: Broadcast[MessageRecord] = Broadcast()

    def events(self, maxsize: int = 10000) -> Reader[SessionEvent]:
        return self.event_hub.reader(maxsize)

    def messages(self, maxsize: int = 10000) -> Reader[MessageRecord]:
        return self.message_hub.reader(maxsize)


def message(n: int, direction: str = "in") -> MessageRecord:
    data = (
        f"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nCall-ID: ping-{n}@127.0.0.1\r\n"
        f"CSeq: {n} OPTIONS\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    return MessageRecord(time.time(), direction, "udp", "udp:127.0.0.1:5060",
                         "udp:127.0.0.1:5070", data)  # fmt: skip


async def test_a_full_queue_loses_the_oldest_and_says_so_in_a_gap_row(tmp_path: Path) -> None:
    fake = FakeEngine()
    log = EventLog(tmp_path / "log.db", queue_size=100)
    await log.start(fake)
    for n in range(250):  # all before the writer's task runs: 150 fall out of its queue
        fake.message_hub.publish(message(n))
    await asyncio.sleep(0.3)
    for n in range(250, 260):
        fake.message_hub.publish(message(n))
    status = await log.stop()
    assert (status.rows_written, status.rows_lost) == (110, 150)
    history = History.open(tmp_path / "log.db")
    gaps = history.gaps()
    assert [(g["stream"], g["lost"], g["reason"]) for g in gaps] == [
        ("messages", 150, "writer queue full")
    ]
    callids = [r["callid"] for r in history.db.execute("SELECT callid FROM messages ORDER BY id")]
    assert callids == [f"ping-{n}@127.0.0.1" for n in range(150, 260)]  # the newest kept
    history.close()


async def test_the_loop_runs_on_while_a_batch_is_being_written(tmp_path: Path, monkeypatch) -> None:
    real_write = Sink.write

    def slow_write(self: Sink, batch):  # SQLite taking its time, in the worker thread
        time.sleep(0.5)
        return real_write(self, batch)

    monkeypatch.setattr(Sink, "write", slow_write)
    fake = FakeEngine()
    log = EventLog(tmp_path / "log.db")
    await log.start(fake)
    fake.message_hub.publish(message(1))
    await asyncio.sleep(0.15)  # the write has begun
    worst = 0.0
    for _ in range(20):  # 20 ticks of 20 ms while the thread sleeps
        before = time.monotonic()
        await asyncio.sleep(0.02)
        worst = max(worst, time.monotonic() - before - 0.02)
    assert worst < 0.05, f"the loop was held up {worst * 1000:.0f} ms"
    status = await log.stop()
    assert status.rows_written == 1
    assert status.max_lag >= 0.5


async def test_batches_are_about_one_interval_apart(tmp_path: Path) -> None:
    fake = FakeEngine()
    log = EventLog(tmp_path / "log.db", interval=0.1)
    await log.start(fake)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 1.0:
        fake.message_hub.publish(message(n))
        n += 1
        await asyncio.sleep(0.005)
    status = await log.stop()
    assert status.rows_written == n
    assert 6 <= status.batches <= 14, status.batches  # ~10 transactions for 1 s of traffic
    assert status.max_lag < 0.5


async def test_a_file_is_in_wal_mode(tmp_path: Path) -> None:
    fake = FakeEngine()
    log = EventLog(tmp_path / "log.db")
    await log.start(fake)
    await log.stop()
    conn = sqlite3.connect(tmp_path / "log.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_registration_changes_are_logged_beside_session_events(tmp_path: Path) -> None:
    fake = FakeEngine()
    log = EventLog(tmp_path / "log.db")
    await log.start(fake)
    changes = [("FAILED", 401, 0), ("REGISTERED", 200, 60)]
    for seq, (kind, status, expires) in enumerate(changes, start=1):
        fake.event_hub.publish(
            RegistrationEvent(  # type: ignore[arg-type]
                account="alice", event_type=kind, status=status, reason="r", expires=expires,
                aor="sip:alice@127.0.0.9", seq=seq, time=1000.0 + seq, origin="remote",
            )
        )  # fmt: skip
    await asyncio.sleep(0.3)
    status = await log.stop()
    assert status.ok and status.rows_lost == 0
    history = History.open(tmp_path / "log.db")
    rows = history.registrations("alice")
    assert [(r["event_type"], r["status"], r["expires"]) for r in rows] == [
        ("REGISTERED", 200, 60),
        ("FAILED", 401, 0),
    ]
    assert history.registrations("bob") == [] and history.counts()["registrations"] == 2
    history.close()
