"""Migrations (an older file is upgraded in place), history queries, search, retention."""

import sqlite3
import time
from pathlib import Path

import pytest
from sqlite_utils import Database

from engine.api.engine import MessageRecord
from engine.store import History, Retention, parse_when
from engine.store.retention import prune, used_bytes
from engine.store.schema import MIGRATIONS, connect, schema_version
from engine.store.sink import Batch, Sink
from engine.ua.events import SessionEvent

T0 = 1_700_000_000.0


def invite(callid: str, caller: str, callee: str, when: float) -> MessageRecord:
    body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    data = (
        f"INVITE sip:{callee}@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{callid}\r\n"
        f'From: "Caller" <sip:{caller}@127.0.0.1>;tag=from-{callid}\r\n'
        f"To: <sip:{callee}@127.0.0.1>\r\nCall-ID: {callid}\r\nCSeq: 1 INVITE\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    return MessageRecord(when, "in", "udp", "udp:127.0.0.1:5060", "udp:127.0.0.1:5070", data)


def reply(callid: str, status: int, reason: str, when: float) -> MessageRecord:
    data = (
        f"SIP/2.0 {status} {reason}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{callid}\r\n"
        f"From: <sip:x@127.0.0.1>;tag=from-{callid}\r\nTo: <sip:y@127.0.0.1>;tag=to-{callid}\r\n"
        f"Call-ID: {callid}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    return MessageRecord(when, "out", "udp", "udp:127.0.0.1:5060", "udp:127.0.0.1:5070", data)


def event(seq: int, key: str, callid: str, kind: str, when: float, method: str = "INVITE",
          origin: str = "remote") -> SessionEvent:  # fmt: skip
    return SessionEvent(key, kind, "UAS", 0, None, method, None, None, seq, when, callid,
                        f"from-{callid}", "", origin)  # fmt: skip


def incoming_call(n: int, caller: str, callee: str, status: int, when: float) -> Batch:
    callid, key = f"call-{n}", f"B2B.{n}.{n}.1700000000.{n:016x}"
    reason = {200: "OK", 486: "Busy Here", 404: "Not Found"}[status]
    return Batch(
        events=[
            event(n * 10, key, callid, "NEW", when),
            event(n * 10 + 1, key, callid, "TERMINATED", when + 5, "BYE"),
        ],
        messages=[invite(callid, caller, callee, when), reply(callid, status, reason, when + 1)],
    )


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A log of four incoming calls an hour apart, written through the real Sink."""
    sink = Sink(tmp_path / "log.db")
    sink.open()
    calls = [
        (1, "alice", "support", 200),
        (2, "bob", "sales", 486),
        (3, "+14155550123", "support", 200),
        (4, "alice", "billing", 404),
    ]
    for n, caller, callee, status in calls:
        sink.write(incoming_call(n, caller, callee, status, T0 + n * 3600))
    sink.close()
    return tmp_path / "log.db"


def test_a_new_file_gets_every_migration(tmp_path: Path) -> None:
    db = connect(tmp_path / "new.db")
    assert schema_version(db) == [m.name for m in MIGRATIONS._migrations]
    assert {"sessions", "events", "messages", "messages_fts", "gaps"} <= set(db.table_names())
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    db.close()


def test_a_file_of_the_first_version_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(path)
    MIGRATIONS.apply(old, stop_before="m002_message_search")
    assert schema_version(old) == ["m001_sessions_events_messages"]
    old["sessions"].insert({"key": "B2B.1", "callid": "c1", "state": "TERMINATED",
                            "created": T0, "from_party": "<sip:carol@127.0.0.1>"})  # fmt: skip
    data = b"INVITE sip:x SIP/2.0\r\nX: findme\r\n\r\n"
    old["messages"].insert({"time": T0, "direction": "in", "first_line": "INVITE sip:x SIP/2.0",
                            "callid": "c1", "data": data})  # fmt: skip
    old.close()

    history = History.open(path)
    assert schema_version(history.db) == [m.name for m in MIGRATIONS._migrations]
    assert [s["key"] for s in history.sessions(party="carol")] == ["B2B.1"]
    assert history.sessions()[0]["ended_by"] is None  # the new column, empty
    assert [r["callid"] for r in history.search("findme")] == ["c1"]  # old rows indexed
    history.close()


def test_history_by_time_party_state_and_status(filled: Path) -> None:
    h = History.open(filled)
    keys = lambda rows: [r["key"].split(".")[1] for r in rows]  # noqa: E731
    assert keys(h.sessions()) == ["4", "3", "2", "1"]  # newest first
    assert keys(h.sessions(since=T0 + 2 * 3600, until=T0 + 4 * 3600)) == ["3", "2"]
    assert keys(h.sessions(party="ALICE")) == ["4", "1"]
    assert keys(h.sessions(party="support")) == ["3", "1"]
    assert keys(h.sessions(party="4155550")) == ["3"]
    assert keys(h.sessions(status="486")) == ["2"]
    assert keys(h.sessions(status="4xx")) == ["4", "2"]
    assert keys(h.sessions(status=200, party="alice")) == ["1"]
    assert keys(h.sessions(state="terminated", limit=2)) == ["4", "3"]
    assert keys(h.sessions(state="active")) == []
    with pytest.raises(ValueError, match="not a status"):
        h.sessions(status="busy")
    s = h.session("B2B.2.2.1700000000.0000000000000002")
    assert s is not None
    assert (s["final_status"], s["final_reason"], s["state"]) == (486, "Busy Here", "TERMINATED")
    assert s["answered"] is None and s["ended"] == T0 + 2 * 3600 + 5
    h.close()


def test_find_a_session_by_key_call_id_or_unique_part(filled: Path) -> None:
    h = History.open(filled)
    assert h.find_session("call-3")["key"].startswith("B2B.3.")
    assert h.find_session("0000000000000004")["callid"] == "call-4"
    with pytest.raises(LookupError, match="several"):
        h.find_session("B2B.")
    with pytest.raises(LookupError, match="no session"):
        h.find_session("nothing-like-it")
    h.close()


def test_search_finds_words_anywhere_in_a_message(filled: Path) -> None:
    h = History.open(filled)
    assert {r["callid"] for r in h.search("Busy Here")} == {"call-2"}
    assert {r["callid"] for r in h.search("sip:bob@127.0.0.1")} == {"call-2"}
    assert {r["callid"] for r in h.search("call-3")} == {"call-3"}
    found = h.search("support")
    assert {r["callid"] for r in found} == {"call-1", "call-3"}
    assert all("[support]" in r["snippet"] for r in found)
    assert h.search('OR "AND') == []  # operators are taken as words, never a syntax error
    h.close()


def test_ladder_is_in_order_with_addresses(filled: Path) -> None:
    h = History.open(filled)
    ladder = h.ladder(h.find_session("call-2")["key"])
    assert [(m["direction"], m["first_line"]) for m in ladder] == [
        ("in", "INVITE sip:sales@127.0.0.1:5060 SIP/2.0"),
        ("out", "SIP/2.0 486 Busy Here"),
    ]
    assert {(m["local"], m["remote"]) for m in ladder} == {
        ("udp:127.0.0.1:5060", "udp:127.0.0.1:5070")
    }
    h.close()


def test_parse_when() -> None:
    now = 1_800_000_000.0
    assert parse_when("90s", now) == now - 90
    assert parse_when("2h", now) == now - 7200
    assert parse_when("3d", now) == now - 3 * 86400
    assert parse_when("1700000000", now) == 1_700_000_000.0
    assert parse_when("2024-05-01T12:00:00+00:00") == 1714564800.0
    with pytest.raises(ValueError, match="not a time"):
        parse_when("yesterday-ish")


def test_retention_by_age_deletes_old_rows_of_every_table(filled: Path) -> None:
    db = connect(filled)
    deleted = prune(db, Retention(max_age=3 * 3600, max_bytes=None), now=T0 + 5 * 3600 + 60)
    assert deleted > 0
    left = [r[0] for r in db.execute("SELECT callid FROM sessions ORDER BY created")]
    assert left == ["call-3", "call-4"]
    assert {r[0] for r in db.execute("SELECT DISTINCT callid FROM messages")} == {
        "call-3",
        "call-4",
    }
    assert {r[0] for r in db.execute("SELECT DISTINCT callid FROM events")} == {"call-3", "call-4"}
    # The search index follows the deletions.
    sql = "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'sales'"
    assert db.execute(sql).fetchone()[0] == 0
    db.close()


def test_retention_by_size_deletes_the_oldest_until_under_the_limit(tmp_path: Path) -> None:
    sink = Sink(tmp_path / "log.db")
    sink.open()
    padding = "x" * 2000
    for n in range(1500):
        batch = incoming_call(n, f"caller{n}", padding, 200, T0 + n)
        sink.write(batch)
    sink.close()
    db = connect(tmp_path / "log.db")
    before = used_bytes(db)
    assert before > 6_000_000
    limit = 2_000_000
    prune(db, Retention(max_age=None, max_bytes=limit, budget=30.0), now=T0 + 10_000)
    assert used_bytes(db) <= limit
    oldest = db.execute("SELECT min(created) FROM sessions").fetchone()[0]
    newest = db.execute("SELECT max(created) FROM sessions").fetchone()[0]
    assert oldest > T0 + 500 and newest == T0 + 1499  # the oldest went, the newest stayed
    db.close()
    # The pages went back to the file system (incremental vacuum), not only to a free list.
    assert (tmp_path / "log.db").stat().st_size < before


def test_pruning_runs_in_the_writer_when_due(tmp_path: Path) -> None:
    sink = Sink(tmp_path / "log.db", retention=Retention(max_age=60, max_bytes=None, every=0.0))
    sink.open()
    sink.write(incoming_call(1, "old", "x", 200, time.time() - 3600))
    sink.write(incoming_call(2, "new", "x", 200, time.time()))
    assert sink.maybe_prune() > 0
    rows = sink.db.execute("SELECT callid FROM sessions").fetchall()  # type: ignore[union-attr]
    assert [r[0] for r in rows] == ["call-2"]
    sink.close()


def test_reading_while_a_writer_holds_the_file(filled: Path) -> None:
    writer = sqlite3.connect(filled)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO gaps (time, stream, lost) VALUES (0, 'events', 1)")
    h = History.open(filled, busy_timeout=0.2)  # WAL: readers are not blocked
    assert len(h.sessions()) == 4
    h.close()
    writer.rollback()
    writer.close()
