"""A file that is corrupt, locked, read-only or on a full disk: one clear line, and the engine goes
on with its calls, without a log."""

import logging
import sqlite3
import subprocess
from pathlib import Path

import pytest

from engine.api.engine import Engine
from engine.store import EventLog, StoreStatus
from tests.conftest import require_tool

from .conftest import free_udp_port, loopback_call, remount_read_only, serve_process, small_mount
from .test_writer import FakeEngine


async def calls_go_on(engine: Engine, log: EventLog) -> StoreStatus:
    """Two calls complete while the log is failing or failed; the log's final status."""
    for _ in range(2):
        uac, uas = await loopback_call(engine)
        assert uac and uas
    await engine.stop()
    return await log.stop()


def one_line(status: StoreStatus, *words: str) -> None:
    assert not status.ok and not status.running
    assert status.error is not None and "\n" not in status.error
    for word in words:
        assert word in status.error, status.error
    assert status.summary.startswith("event log off: cannot use event log ")


async def test_a_corrupt_file(engine: Engine, tmp_path: Path, caplog) -> None:
    path = tmp_path / "log.db"
    path.write_bytes(b"this is not SQLite at all\n" * 500)
    log = EventLog(path)
    with caplog.at_level(logging.ERROR, "uaconsole.store"):
        status = await log.start(engine)
    one_line(status, str(path), "corrupt")
    assert any("the engine goes on without it" in r.getMessage() for r in caplog.records)
    await calls_go_on(engine, log)
    assert path.read_bytes().startswith(b"this is not SQLite")  # left as it was


async def test_a_file_damaged_inside(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page
    path.write_bytes(bytes(data))
    log = EventLog(path)
    one_line(await log.start(engine), "corrupt")
    await calls_go_on(engine, log)


async def test_a_file_locked_by_another_process(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE mine (x)")
    other.execute("BEGIN EXCLUSIVE")  # another program holds the file
    try:
        log = EventLog(path, busy_timeout=0.2)
        one_line(await log.start(engine), "locked by another process")
        await calls_go_on(engine, log)
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_a_file_locked_later_while_calls_run(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = EventLog(path, busy_timeout=0.2)
    assert (await log.start(engine)).ok
    await loopback_call(engine)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        status = await calls_go_on(engine, log)
    finally:
        other.execute("ROLLBACK")
        other.close()
    one_line(status, "locked by another process")
    assert status.rows_written > 0 and status.rows_lost > 0


async def test_a_read_only_file(engine: Engine, tmp_path: Path) -> None:
    mount = tmp_path / "ro"
    with small_mount(mount, "1m"):
        path = mount / "log.db"
        first = EventLog(path)
        assert (await first.start(FakeEngine())).ok
        await first.stop()
        remount_read_only(mount)
        log = EventLog(path)
        one_line(await log.start(engine), str(path), "read-only")
        await calls_go_on(engine, log)


async def test_a_missing_folder_that_cannot_be_made(engine: Engine, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    log = EventLog(blocker / "sub" / "log.db")
    one_line(await log.start(engine), "not a directory")
    await calls_go_on(engine, log)


async def test_a_full_disk(engine: Engine, tmp_path: Path) -> None:
    """On a 256 KiB tmpfs; the calls carry a large header so that it fills in a few calls."""
    mount = tmp_path / "tiny"
    with small_mount(mount, "256k"):
        path = mount / "log.db"
        log = EventLog(path, interval=0.02)
        assert (await log.start(engine)).ok
        big = "x" * 3000
        for _ in range(60):
            await loopback_call(engine, caller=f"Alice {big},sip:alice@127.0.0.1", hold=0)
            if not log.status.ok:
                break
        status = await calls_go_on(engine, log)
    one_line(status, "disk is full")
    assert status.rows_written > 0 and status.rows_lost > 0


async def test_a_full_disk_emulated_with_max_page_count(engine: Engine, tmp_path: Path) -> None:
    """The same without root: SQLite's max_page_count caps the file (SQLITE_FULL)."""
    log = EventLog(tmp_path / "log.db", interval=0.02, pragmas={"max_page_count": 80})
    assert (await log.start(engine)).ok
    for _ in range(60):
        await loopback_call(engine, caller=f"Alice {'x' * 3000},sip:alice@127.0.0.1", hold=0)
        if not log.status.ok:
            break
    status = await calls_go_on(engine, log)
    one_line(status, "disk is full")


@pytest.mark.parametrize("bad", ["corrupt", "locked"])
async def test_the_status_listener_hears_of_the_failure(
    engine: Engine, tmp_path: Path, bad: str
) -> None:
    path = tmp_path / "log.db"
    other = None
    if bad == "corrupt":
        path.write_bytes(b"garbage" * 1000)
    else:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
    seen: list[StoreStatus] = []
    log = EventLog(path, busy_timeout=0.1)
    log.subscribe(seen.append)
    await log.start(engine)
    assert seen and not seen[-1].ok and seen[-1].error
    await log.stop()
    if other is not None:
        other.execute("ROLLBACK")
        other.close()


def test_serve_with_a_corrupt_file_says_so_once_and_answers_calls(tmp_path: Path) -> None:
    sipp = require_tool("sipp")
    path = tmp_path / "log.db"
    path.write_bytes(b"\x00garbage" * 1000)
    port = free_udp_port()
    with serve_process(port, "--db", str(path), log=tmp_path / "serve.log"):
        result = subprocess.run(
            [sipp, "-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1",
             "-p", str(free_udp_port()), "-m", "5", "-r", "10", "-nostdin", "-timeout", "20s"],
            cwd=tmp_path, capture_output=True, text=True, timeout=40,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-1500:]
    lines = (tmp_path / "serve.log").read_text().splitlines()
    off = [line.split(" ", 2)[2] for line in lines if "event log" in line]
    assert off == [f"ERROR uaconsole.store: event log off: cannot use event log {path}: the file "
                   "is corrupt or is not an event log (file is not a database); the engine goes "
                   "on without it"], lines  # fmt: skip
