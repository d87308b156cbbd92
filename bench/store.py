"""The event log under load: SIPp's ``uac`` calls the engine (auto-answer) at a fixed rate.

Run with ``make bench`` or ``.venv/bin/python bench/store.py [--rate 1000] [--duration 30]``.
Each rate runs twice, with the log on and off, on 127.0.0.1 only. Printed per run: the calls/s
the engine held (calls SIPp completed / seconds the run took), failed calls, the CPU this process
(engine and writer) spent per call, and with the log on: rows (events and SIP messages) written
per second, the writer's largest lag (oldest item of a batch to its commit) and rows lost (must
be 0). Needs SIPp (Debian: sip-tester).
"""

import argparse
import asyncio
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.api.config import EngineConfig
from engine.api.engine import Engine
from engine.store import EventLog, History
from engine.transport.spec import ListenSpec


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cumulative(screen: str, counter: str) -> int:
    """The last cumulative value of a counter of SIPp's statistics screen."""
    values = re.findall(rf"{counter}\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return int(values[-1]) if values else 0


async def run(sipp: str, rate: int, duration: int, db: Path | None, workdir: Path) -> dict:
    port = free_udp_port()
    config = EngineConfig(listen=(ListenSpec.parse(f"udp:127.0.0.1:{port}"),))
    engine = Engine(config.with_incoming("auto-answer"))
    log = EventLog(db) if db is not None else None
    if log is not None:
        status = await log.start(engine)
        if not status.ok:
            raise SystemExit(f"bench: {status.error}")
    await engine.start()
    calls = rate * duration
    started = time.monotonic()
    cpu_before = os.times()
    process = await asyncio.create_subprocess_exec(
        sipp, "-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(free_udp_port()),
        "-r", str(rate), "-m", str(calls), "-nostdin", "-timeout", f"{duration * 3 + 30}s",
        "-max_recv_loops", "10000", "-trace_err",
        cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    elapsed = time.monotonic() - started
    cpu_after = os.times()
    await engine.stop()
    result = {"rate": rate, "log": "on" if log else "off", "elapsed": elapsed}
    screen = out.decode("utf-8", "replace")
    result["ok"] = cumulative(screen, "Successful call")
    result["failed"] = cumulative(screen, "Failed call")
    result["held"] = result["ok"] / elapsed
    # CPU of this process (the engine, its loop and the writer thread) per completed call.
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    result["cpu_per_call_us"] = cpu / max(result["ok"], 1) * 1e6
    if log is not None:
        status = await log.stop()
        result.update(
            rows=status.rows_written,
            rows_per_s=status.rows_written / elapsed,
            max_lag_ms=status.max_lag * 1000,
            lost=status.rows_lost,
            batches=status.batches,
        )
        history = History.open(db)
        result["sessions"] = history.counts()["sessions"]
        history.close()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, action="append", help="calls/s (repeatable; 1000)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load (default 30)")
    args = parser.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("bench/store.py needs SIPp (Debian: apt-get install sip-tester)")
    rates = args.rate or [1000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for rate in rates:
            for on in (True, False):
                db = workdir / f"bench-{rate}.db" if on else None
                r = await run(sipp, rate, args.duration, db, workdir)
                rows.append(r)
                print(f"  rate {rate} log {r['log']}: {r['ok']} calls in {r['elapsed']:.1f}s",
                      file=sys.stderr, flush=True)  # fmt: skip
                await asyncio.sleep(2)
    print(f"\nSIPp uac -> engine (auto-answer), {args.duration} s per run, 127.0.0.1 UDP\n")
    print("| offered cps | log | calls held/s | failed calls | engine CPU/call | rows written/s | "
          "writer lag max | rows lost |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["log"] == "on":
            extra = f"{r['rows_per_s']:.0f} | {r['max_lag_ms']:.0f} ms | {r['lost']}"
        else:
            extra = "- | - | -"
        print(f"| {r['rate']} | {r['log']} | {r['held']:.0f} | {r['failed']} | "
              f"{r['cpu_per_call_us']:.0f} us | {extra} |")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
