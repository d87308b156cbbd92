"""Event-loop lag of the console under load.

The main window is open (offscreen) with its engine embedded and answering every call by itself
(``--incoming auto-answer``), logging to a throwaway SQLite file; SIPp places calls at RATE
calls/s for DURATION seconds (each call lasts HOLD ms). A probe on the event loop (the one loop
that the window and the engine share, through qasync) asks to wake every 10 ms and records how
late it wakes: that lateness is what an operator feels as a frozen window.

Prints the lag's p50, p99 and max, and the calls lost (placed by SIPp and not completed, plus
events the console fell behind on). Everything stays on 127.0.0.1.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_lag.py [--rate 200] [--duration 30]
"""

import argparse
import asyncio
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QSettings

PROBE_INTERVAL = 0.010


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def probe(samples: list[float], stop: asyncio.Event) -> None:
    """Sleep 10 ms at a time; record how late each wake-up is."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + PROBE_INTERVAL
        await asyncio.sleep(PROBE_INTERVAL)
        samples.append(max(0.0, loop.time() - expected))


def sipp_stats(folder: Path) -> dict[str, str]:
    """The last line of SIPp's statistics file."""
    files = sorted(folder.glob("*_.csv")) or sorted(folder.glob("*.csv"))
    if not files:
        return {}
    with files[-1].open() as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    return rows[-1] if rows else {}


async def main(args: argparse.Namespace) -> int:
    from gui.app import Console, argument_parser
    from gui.mainwindow import MainWindow

    sipp = shutil.which("sipp")
    if sipp is None:
        print("gui_lag: sipp is not installed (Debian: apt-get install sip-tester)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="uaconsole-gui-lag-"))
    flags = [
        "--config",
        str(work / "uaconsole.toml"),
        "--listen",
        "udp:127.0.0.1:0",
        "--incoming",
        "auto-answer",
        "--no-mi",
    ]
    flags += ["--no-db"] if args.no_db else ["--db", str(work / "eventlog.db")]
    console = Console(argument_parser().parse_args(flags))
    window = MainWindow(console.hub, console)
    window.resize(1280, 860)
    window.show()
    await console.start()
    window.backend_changed()
    backend = console.backend
    assert backend is not None and not backend.start_error, backend and backend.start_error
    port = int(backend.listeners[0].rsplit(":", 1)[1])
    calls = int(args.rate * args.duration)
    command = [
        sipp,
        f"127.0.0.1:{port}",
        "-sn",
        "uac",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_udp_port()),
        "-r",
        str(args.rate),
        "-m",
        str(calls),
        "-d",
        str(args.hold),
        "-l",
        str(calls),
        "-nostdin",
        "-timeout",
        f"{int(args.duration + 60)}s",
        "-trace_stat",
        "-fd",
        "1",
        "-max_socket",
        "1000",
    ]
    # Let the window settle, then measure the idle lag for a second as a baseline.
    await asyncio.sleep(1.0)
    idle: list[float] = []
    stop = asyncio.Event()
    task = asyncio.ensure_future(probe(idle, stop))
    await asyncio.sleep(1.0)
    stop.set()
    await task

    samples: list[float] = []
    stop = asyncio.Event()
    task = asyncio.ensure_future(probe(samples, stop))
    started = time.monotonic()
    with (work / "sipp.log").open("wb") as out:
        process = subprocess.Popen(
            command, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        max_rows = 0
        while process.poll() is None:
            await asyncio.sleep(0.2)
            max_rows = max(max_rows, window.sessions_model.rowCount())
            if time.monotonic() - started > args.duration + 90:
                process.terminate()
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)  # the last events reach the window
    stop.set()
    await task
    stats = sipp_stats(work)
    hub = console.hub
    placed = int(stats.get("TotalCallCreated", calls) or calls)
    succeeded = int(stats.get("SuccessfulCall(C)", 0) or 0)
    failed = int(stats.get("FailedCall(C)", 0) or 0)
    ended_here = sum(1 for s in hub.sessions.values() if s.state == "Ended")
    window.grab().save(str(work / "window-under-load.png"))
    window.close()
    await console.stop()
    store = console.store_status

    ms = [s * 1000 for s in samples]
    print(
        f"UA Console event-loop lag, {args.rate} calls/s for {args.duration:.0f} s "
        f"({calls} calls of {args.hold} ms, auto-answer, window open offscreen, "
        f"{'no event log' if args.no_db else 'SQLite event log on'})"
    )
    print(
        f"  idle lag:       p50 {percentile([s * 1000 for s in idle], 0.5):6.2f} ms   "
        f"max {max(idle, default=0) * 1000:6.2f} ms"
    )
    print(
        f"  lag under load: p50 {percentile(ms, 0.5):6.2f} ms   p99 {percentile(ms, 0.99):6.2f} ms"
        f"   max {max(ms, default=0):6.2f} ms   ({len(ms)} samples over {elapsed:.1f} s)"
    )
    print(
        f"  SIPp: {placed} placed, {succeeded} completed, {failed} failed "
        f"(exit code {process.returncode})"
    )
    print(
        f"  console: {len(hub.sessions)} sessions in the table (max {max_rows} rows seen), "
        f"{ended_here} ended normally; events lost {hub.events_lost}, "
        f"messages lost {hub.messages_lost}; {hub.flushes} model updates "
        f"({hub.flushes / max(elapsed, 0.001):.1f}/s)"
    )
    if store is not None:
        print(f"  event log: {getattr(store, 'summary', store)}")
    lost = (placed - succeeded) + hub.events_lost
    print(f"  calls lost: {lost}")
    print(f"  screenshot: {work / 'window-under-load.png'}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second (200)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of calls (30)")
    parser.add_argument("--hold", type=int, default=1000, help="each call's length in ms (1000)")
    parser.add_argument("--no-db", action="store_true", help="run without the SQLite event log")
    options = parser.parse_args()

    import qasync

    from gui.app import make_application

    app = make_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp(prefix="qs-")
    )
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        sys.exit(loop.run_until_complete(main(options)))
