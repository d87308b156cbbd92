"""Kill test: ``uaconsole serve`` under SIPp load dies by SIGKILL; the file opens, passes
``PRAGMA integrity_check``, and holds every call that SIPp saw complete more than one batch
interval (plus a commit's margin) before the kill."""

import re
import signal
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path

from engine.store.writer import BATCH_INTERVAL
from tests.conftest import require_tool

from .conftest import free_udp_port, serve_process

#: What may be missing: the batch being gathered, and the one being committed at the kill.
WINDOW = BATCH_INTERVAL + 0.1
_ENTRY = re.compile(
    r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(UDP message (?:received|sent)[^\n]*)\n",
    re.MULTILINE,
)


def completed_calls(message_log: str) -> dict[str, float]:
    """Call-ID -> when SIPp received the 200 OK to its BYE (the call's last message)."""
    done: dict[str, float] = {}
    entries = list(_ENTRY.finditer(message_log))
    for n, entry in enumerate(entries):
        end = entries[n + 1].start() if n + 1 < len(entries) else len(message_log)
        text = message_log[entry.end() : end].lstrip("\r\n")
        if "received" not in entry.group(2) or not text.startswith("SIP/2.0 200"):
            continue
        if not re.search(r"^CSeq:\s*\d+ BYE", text, re.MULTILINE | re.IGNORECASE):
            continue
        callid = re.search(r"^Call-ID:\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
        when = datetime.strptime(entry.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if callid:
            done.setdefault(callid.group(1), when)
    return done


def test_sigkill_under_load_keeps_every_event_older_than_a_batch(tmp_path: Path) -> None:
    sipp = require_tool("sipp")
    port = free_udp_port()
    db = tmp_path / "kill.db"
    with serve_process(port, "--db", str(db), log=tmp_path / "serve.log") as serve:
        load = subprocess.Popen(
            [sipp, "-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1",
             "-p", str(free_udp_port()), "-r", "100", "-m", "2000", "-nostdin",
             "-timeout", "20s", "-trace_msg", "-message_file", "messages.log", "-trace_err"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(3.0)
            killed_at = time.time()
            serve.send_signal(signal.SIGKILL)
            serve.wait(10)
        finally:
            load.send_signal(signal.SIGINT)
            try:
                load.wait(10)
            except subprocess.TimeoutExpired:
                load.kill()
                load.wait()
    assert serve.returncode == -signal.SIGKILL

    done = completed_calls((tmp_path / "messages.log").read_text(errors="replace"))
    expected = {c for c, t in done.items() if t < killed_at - WINDOW}
    assert len(expected) > 150, f"SIPp completed only {len(expected)} calls before the kill"

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    logged = {
        row[0]: row[1:]
        for row in conn.execute("SELECT callid, state, final_status, key FROM sessions")
    }
    missing = expected - logged.keys()
    lost = sorted(killed_at - t for c, t in done.items() if c not in logged and t < killed_at)
    print(
        f"\nkill test: {len(done)} calls completed in SIPp before the kill, {len(expected)} "
        f"older than {WINDOW * 1000:.0f} ms, {len(logged)} sessions in the file; completed "
        f"calls not in the file: {len(lost)}, the oldest {lost[-1] * 1000 if lost else 0:.0f} ms "
        "before the kill"
    )
    assert not missing, f"{len(missing)} of {len(expected)} completed calls not in the file"
    for callid in expected:
        state, final, key = logged[callid]
        assert (state, final) == ("TERMINATED", 200), callid
        kinds = [r[0] for r in conn.execute(
            "SELECT event_type FROM events WHERE key = ? ORDER BY seq", [key])]  # fmt: skip
        assert kinds == ["NEW", "TERMINATED"], (callid, kinds)
        flow = [r[0].split(" ")[0] for r in conn.execute(
            "SELECT first_line FROM messages WHERE callid = ? ORDER BY id", [callid])]  # fmt: skip
        assert flow == ["INVITE", "SIP/2.0", "ACK", "BYE", "SIP/2.0"], (callid, flow)
    # Nothing is invented: no event in the file is later than the kill.
    latest = conn.execute("SELECT max(time) FROM events").fetchone()[0]
    assert latest < killed_at
    conn.close()
