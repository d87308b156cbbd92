"""Memory per session: 10,000 concurrent established calls held by ``uaconsole serve``.

Starts ``.venv/bin/uaconsole serve --incoming auto-answer --no-db --no-mi --log-level warning``
on a free 127.0.0.1 UDP port and reads its resident memory (VmRSS of /proc/PID/status):

1. cold idle: right after start;
2. warm idle: after ``--warmup`` short calls (default 100) and the 32 s the engine keeps ended
   transactions, so that code paths imported or cached on a first call are not counted as
   per-session memory (this is the baseline);
3. loaded: SIPp's built-in ``uac`` with a long pause (``-d 120000``) at ``--rate`` calls/s
   (default 500) with ``-l 10000 -m 10000``, once SIPp counts every call in its pause (INVITE
   answered, ACK sent: ``*_Pause_Sessions`` of ``-trace_counts``), plus 2 s;
4. settled: ``--settle`` seconds later (default 35): the sessions are still up, but the INVITE
   transactions the engine keeps 32 s to absorb retransmissions are gone.

Per session = (RSS - warm idle RSS) / established sessions, in KiB, for 3 and 4. If the count
is not reached (SIPp stops, or no progress for 30 s), the figures are given for the sessions
established then. SIPp is then stopped (its calls are dropped, no BYE) and the server gets
SIGTERM (it ends its sessions, bounded at 5 s). Everything stays on 127.0.0.1.

    .venv/bin/python bench/memory.py [--sessions 10000] [--rate 500] [--server uaconsole]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from child_processes import (
    CHILDREN,
    HOST,
    ROOT,
    free_udp_port,
    read_stats,
    sipp_missing,
    spawn,
    stop,
    udp_port_bound,
    venv_tool,
    work_folder,
)

TRANSACTION_LINGER = 32.0  # seconds the engine keeps ended transactions (Timer J/H of RFC 3261)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def server_command(kind: str, port: int, log_level: str) -> list[str]:
    if kind == "uaconsole":
        return [
            venv_tool("uaconsole"),
            "serve",
            "--listen",
            f"udp:{HOST}:{port}",
            "--incoming",
            "auto-answer",
            "--no-db",
            "--no-mi",
            "--log-level",
            log_level,
        ]
    return [
        venv_tool("python"),
        str(ROOT / "bench" / "aiosipua_uas.py"),
        "--listen",
        f"{HOST}:{port}",
        "--log-level",
        log_level,
    ]


def start_server(kind: str, work: Path, log_level: str) -> tuple[subprocess.Popen, int]:
    port = free_udp_port()
    log = work / "server.log"
    process = spawn(server_command(kind, port, log_level), log, work)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode}; see {log}")
        if "listening on" in log.read_text(errors="replace") and udp_port_bound(port):
            return process, port
        time.sleep(0.05)
    raise RuntimeError(f"{kind} did not start within 30 s; see {log}")


def sipp_command(port: int, calls: int, rate: float, pause_ms: int, stats: Path) -> list[str]:
    return [
        "sipp",
        f"{HOST}:{port}",
        "-sn",
        "uac",
        "-i",
        HOST,
        "-p",
        str(free_udp_port()),
        "-r",
        f"{rate:g}",
        "-l",
        str(calls),
        "-m",
        str(calls),
        "-d",
        str(pause_ms),
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(stats),
        "-fd",
        "1",
        "-trace_counts",
    ]


def established(folder: Path) -> int:
    """Calls SIPp holds in its pause (answered and ACKed), from its last counts dump."""
    files = sorted(folder.glob("uac_*_counts.csv"))
    row = (read_stats(files[-1]) or [{}])[-1] if files else {}
    return next((int(v or 0) for k, v in row.items() if k and k.endswith("_Pause_Sessions")), 0)


def run_calls(folder: Path, port: int, calls: int, rate: float, pause_ms: int) -> subprocess.Popen:
    command = sipp_command(port, calls, rate, pause_ms, folder / "stat.csv")
    (folder / "command.txt").write_text(" ".join(command) + "\n")
    return spawn(command, folder / "sipp.log", folder)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Resident memory per established session of uaconsole serve, with SIPp "
        "holding 10,000 calls open.",
        epilog="See the module docstring (bench/memory.py) for the method.",
    )
    parser.add_argument("--sessions", type=int, default=10000, help="default %(default)s")
    parser.add_argument("--rate", type=float, default=500, help="calls/s (default %(default)s)")
    parser.add_argument(
        "--hold-ms",
        type=int,
        default=120000,
        help="SIPp's -d: how long each call stays up (default %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=100,
        help="short calls before the idle reading (default %(default)s; 0: none)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=35.0,
        help="seconds between the loaded and the settled reading (default "
        "%(default)s; 0: no settled reading)",
    )
    parser.add_argument(
        "--server",
        choices=("uaconsole", "aiosipua"),
        default="uaconsole",
        help="the server (aiosipua: bench/aiosipua_uas.py; default uaconsole)",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=("info", "warning"),
        help="the server's log level (default %(default)s)",
    )
    parser.add_argument(
        "--keep-logs", type=Path, metavar="DIR", help="keep SIPp's and the server's files in DIR"
    )
    args = parser.parse_args()
    needed = args.sessions / args.rate + 2 + args.settle + 10
    if args.hold_ms / 1000 < needed:
        parser.error(f"--hold-ms must be at least {needed * 1000:.0f} for the calls to last")
    if sipp_missing("memory"):
        return 2
    try:
        with work_folder("memory", args.keep_logs) as work:
            print(
                f"memory: {args.server}, {args.sessions} sessions at {args.rate:g} calls/s; "
                f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
                f"{time.strftime('%Y-%m-%d %H:%M %Z')}; files in {work}",
                flush=True,
            )
            return measure(args, work)
    except KeyboardInterrupt:
        print("memory: interrupted", file=sys.stderr)
        return 130


def measure(args: argparse.Namespace, work: Path) -> int:
    server, port = start_server(args.server, work, args.log_level)
    time.sleep(2.0)
    cold = rss_kib(server.pid)
    print(f"cold idle RSS: {cold} KiB", flush=True)
    idle = cold
    if args.warmup:
        folder = work / "warmup"
        folder.mkdir()
        warm = run_calls(folder, port, args.warmup, min(args.rate, 100), 0)
        if warm.wait(120) != 0:
            print(f"memory: the warm-up calls did not all succeed (SIPp exit {warm.returncode})")
        CHILDREN.remove(warm)
        time.sleep(TRANSACTION_LINGER + 3)
        idle = rss_kib(server.pid)
        print(
            f"warm idle RSS ({args.warmup} calls, then {TRANSACTION_LINGER + 3:g} s): {idle} KiB",
            flush=True,
        )

    folder = work / "load"
    folder.mkdir()
    started = time.monotonic()
    sipp = run_calls(folder, port, args.sessions, args.rate, args.hold_ms)
    best, best_at = 0, time.monotonic()
    while True:
        time.sleep(0.5)
        count = established(folder)
        if count > best:
            best, best_at = count, time.monotonic()
        if count >= args.sessions:
            break
        if sipp.poll() is not None:
            print(f"memory: SIPp stopped (exit {sipp.returncode}) with {count} calls up")
            break
        if time.monotonic() - best_at > 30:
            print(f"memory: no progress for 30 s, {count} calls up")
            break
    time.sleep(2.0)  # the last ACKs reach the server; SIPp dumps its counts once more
    up = established(folder)
    loaded = rss_kib(server.pid)
    took = time.monotonic() - started
    stats = (read_stats(folder / "stat.csv") or [{}])[-1]
    print(
        f"loaded RSS: {loaded} KiB with {up} sessions established ({took:.0f} s after the "
        f"first call; SIPp: {stats.get('FailedCall(C)', '?')} failed, "
        f"{stats.get('Retransmissions(C)', '?')} retransmissions)",
        flush=True,
    )
    readings = [("loaded", loaded, up)]
    if args.settle and sipp.poll() is None:
        time.sleep(args.settle)
        settled_up = established(folder)
        settled = rss_kib(server.pid)
        print(
            f"settled RSS ({args.settle:g} s later): {settled} KiB with {settled_up} "
            f"sessions established",
            flush=True,
        )
        readings.append(("settled", settled, settled_up))
    stop(sipp)
    stopped_in = stop(server, grace=30.0)
    print(f"stopped SIPp, then the server (it took {stopped_in:.1f} s)")
    print()
    print("| reading | sessions | RSS KiB | above warm idle KiB | KiB per session |")
    print("|---|---|---|---|---|")
    print(f"| cold idle | 0 | {cold} | | |")
    print(f"| warm idle | 0 | {idle} | 0 | |")
    for name, rss, n in readings:
        per = (rss - idle) / n if n else float("nan")
        print(f"| {name} | {n} | {rss} | {rss - idle} | {per:.2f} |")
    if up < args.sessions:
        print(f"\nonly {up} of {args.sessions} sessions were reached")
    return 0 if up >= args.sessions else 1


if __name__ == "__main__":
    sys.exit(main())
