"""Calls per second: SIPp's built-in ``uac`` scenario against the engine and against aiosipua.

For each server, at stepped rates (100, 200, 400, 800, 1600, 2400, 3200 calls/s by default),
SIPp places RATE x STEP_SECONDS calls (``sipp -sn uac -r RATE -m RATE*10``: INVITE with SDP,
ACK, BYE at once) against a fresh server process on a free 127.0.0.1 port:

- ``uaconsole``: ``.venv/bin/uaconsole serve --incoming auto-answer --no-db --no-mi
  --log-level warning --listen udp:127.0.0.1:PORT``
- ``aiosipua``: ``bench/aiosipua_uas.py`` (a minimal auto-answer UAS written with aiosipua 0.7.1)
- ``sipp`` (only with ``--servers ...,sipp``): SIPp's own ``-sn uas``, SIPp against itself

From SIPp's statistics file (``-trace_stat -stf FILE -fd 1``) each step reports:

- achieved rate: calls placed / seconds since SIPp started, at the last dump taken while SIPp
  was still placing calls (SIPp's ``CallRate(C)``, recomputed from the microsecond timestamps);
- failed %: calls that did not succeed (``FailedCall(C)`` plus calls still open or never placed
  when SIPp stopped) per call planned;
- retransmissions %: SIPp's ``Retransmissions(C)`` (INVITE and BYE sent again because the answer
  was late) per call placed, i.e. retransmissions per 100 calls;
- server CPU: utime + stime of the server process (/proc/PID/stat) from before SIPp starts to
  after it ends, in seconds, per call (us), and as a share of one core over the step; SIPp's
  own CPU (wait4); and "other": the CPU every other process of the machine used meanwhile
  (/proc/stat busy time minus both), which should be near 0 for a clean measurement;
- UDP drops: datagrams the kernel dropped meanwhile because a socket's receive buffer was full
  (RcvbufErrors of /proc/net/snmp, machine-wide): a server that stalls loses requests this way,
  and each loss comes back as a retransmission.

Before each step the script waits (``--wait-quiet``, at most 300 s) for the machine to be
near idle, so that the steps are not measured while something else runs; a step that fails
while other processes used more than 5% of a core is repeated (``--retries``, default 2) and
judged by its last attempt.

A step holds with under 0.1% failed calls, under 1% retransmissions and the offered rate reached
(achieved >= 95% of it: otherwise the step did not measure its rate). Stepping a server stops
after its first failing step (``--keep-going`` runs every step). Everything stays on 127.0.0.1.

    .venv/bin/python bench/cps.py [--servers uaconsole,aiosipua] [--rates 100,200,...]
                                  [--step-seconds 10] [--keep-going] [--keep-logs DIR]
"""

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
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

DEFAULT_RATES = (100, 200, 400, 800, 1600, 2400, 3200)
MAX_FAILED_PCT = 0.1
MAX_RETRANS_PCT = 1.0
MIN_RATE_SHARE = 0.95
DISTURBED_SHARE = 0.05
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- child processes ---------------------------------------------------------------------------


def wait_rusage(process: subprocess.Popen, timeout: float) -> tuple[int, float]:
    """Wait for ``process`` (SIGTERM at ``timeout`` seconds, SIGKILL 10 s later): exit code and
    CPU seconds (user + system) it used, from wait4."""
    deadline = time.monotonic() + timeout
    signalled = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            if process in CHILDREN:
                CHILDREN.remove(process)
            return process.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline and signalled < 2:
            os.kill(process.pid, signal.SIGTERM if signalled == 0 else signal.SIGKILL)
            signalled += 1
            deadline = time.monotonic() + 10.0
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (not idle or iowait) since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK  # up to steal, minus idle, iowait


def udp_receive_drops() -> int:
    """Datagrams the kernel dropped for a full receive buffer, machine-wide (/proc/net/snmp)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [line for line in lines if line[0] == "Udp:"][:2]
    return int(values[names.index("RcvbufErrors")])


def wait_for_quiet(limit: float, most: float = 0.15) -> float:
    """Wait (at most ``limit`` s) until the machine is near idle: under ``most`` cores busy over
    two seconds. The busy cores seen last."""
    deadline = time.monotonic() + limit
    while True:
        before = machine_busy_seconds()
        time.sleep(2.0)
        busy = (machine_busy_seconds() - before) / 2.0
        if busy < most or time.monotonic() >= deadline:
            return busy


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- servers -----------------------------------------------------------------------------------


def server_command(kind: str, port: int) -> tuple[list[str], str | None]:
    """The command line of a server and the line it prints when ready (None: port bound)."""
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
            "warning",
        ], "listening on"
    if kind == "aiosipua":
        python = venv_tool("python")
        script = str(ROOT / "bench" / "aiosipua_uas.py")
        return [python, script, "--listen", f"{HOST}:{port}", "--log-level", "warning"], (
            "listening on"
        )
    if kind == "sipp":
        return ["sipp", "-sn", "uas", "-i", HOST, "-p", str(port), "-nostdin"], None
    raise ValueError(kind)


def start_server(kind: str, work: Path, label: str) -> tuple[subprocess.Popen, int, Path]:
    port = free_udp_port()
    command, ready_text = server_command(kind, port)
    log = work / f"{label}.server.log"
    process = spawn(command, log, work)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode}; see {log}")
        ready = ready_text is None or ready_text in log.read_text(errors="replace")
        if ready and udp_port_bound(port):
            return process, port, log
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{kind} did not start within 30 s; see {log}")


# --- one step ----------------------------------------------------------------------------------


@dataclass
class Step:
    server: str
    rate: int
    planned: int
    attempt: int = 1
    placed: int = 0
    succeeded: int = 0
    failed_sipp: int = 0
    retrans: int = 0
    retrans_2xx_received: int = 0
    achieved: float = 0.0
    wall: float = 0.0
    server_cpu: float = 0.0
    sipp_cpu: float = 0.0
    other_cpu: float = 0.0
    udp_drops: int = 0
    sipp_rc: int = 0

    @property
    def failed(self) -> int:
        """Failed, still open when SIPp stopped, or never placed."""
        return self.planned - self.succeeded

    @property
    def failed_pct(self) -> float:
        return 100.0 * self.failed / self.planned

    @property
    def retrans_pct(self) -> float:
        return 100.0 * self.retrans / max(self.placed, 1)

    @property
    def reasons(self) -> list[str]:
        why = []
        if self.failed_pct >= MAX_FAILED_PCT:
            why.append("failed")
        if self.retrans_pct >= MAX_RETRANS_PCT:
            why.append("retrans")
        if self.achieved < MIN_RATE_SHARE * self.rate:
            why.append("rate")
        return why

    @property
    def disturbed(self) -> bool:
        """Other processes used more than 5% of a core during the step."""
        return self.other_cpu > DISTURBED_SHARE * max(self.wall, 1.0)

    @property
    def holds(self) -> bool:
        return not self.reasons


def epoch(field: str) -> float:
    """SIPp's time fields read ``DATE<TAB>TIME<TAB>EPOCH``."""
    return float(field.split("\t")[-1])


def read_counts(folder: Path) -> dict[str, str]:
    """Last row of SIPp's per-message counts (``-trace_counts``)."""
    files = sorted(folder.glob("uac_*_counts.csv"))
    if not files:
        return {}
    with files[-1].open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    return rows[-1] if rows else {}


def achieved_rate(rows: list[dict[str, str]], planned: int) -> float:
    """Calls placed per second while SIPp was placing them."""
    start = epoch(rows[0]["StartTime"])
    placing = [r for r in rows if 0 < int(r["OutgoingCall(C)"]) < planned]
    if placing:
        row = placing[-1]
    else:  # all placed before the first dump, or never all placed: a lower bound
        done = [r for r in rows if int(r["OutgoingCall(C)"]) >= planned]
        row = done[0] if done else rows[-1]
    elapsed = epoch(row["CurrentTime"]) - start
    return int(row["OutgoingCall(C)"]) / elapsed if elapsed > 0 else 0.0


def run_step(
    kind: str, rate: int, seconds: float, work: Path, quiet: float, attempt: int = 1
) -> Step:
    label = f"{kind}-{rate}" + (f"-try{attempt}" if attempt > 1 else "")
    if quiet > 0:
        busy = wait_for_quiet(quiet)
        if busy >= 0.15:
            print(
                f"cps: the machine is still busy ({busy:.1f} cores) after {quiet:g} s; "
                "measuring anyway",
                file=sys.stderr,
                flush=True,
            )
    folder = work / label
    n = 1
    while folder.exists():  # the same rate asked twice (--rates 3200,3200), or a retry
        n += 1
        folder = work / f"{label}-{n}"
    folder.mkdir()
    planned = int(rate * seconds)
    step = Step(kind, rate, planned, attempt=attempt)
    server, port, _ = start_server(kind, folder, label)
    try:
        time.sleep(0.5)  # let the idle server settle
        cpu_before = cpu_seconds(server.pid)
        busy_before = machine_busy_seconds()
        drops_before = udp_receive_drops()
        stats = folder / "stat.csv"
        command = [
            "sipp",
            f"{HOST}:{port}",
            "-sn",
            "uac",
            "-i",
            HOST,
            "-p",
            str(free_udp_port()),
            "-r",
            str(rate),
            "-m",
            str(planned),
            "-l",
            str(planned),
            "-nostdin",
            "-trace_stat",
            "-stf",
            str(stats),
            "-fd",
            "1",
            "-trace_counts",
            "-timeout",
            f"{int(seconds + 50)}s",
        ]
        (folder / "command.txt").write_text(" ".join(command) + "\n")
        started = time.monotonic()
        sipp = spawn(command, folder / "sipp.log", folder)
        step.sipp_rc, step.sipp_cpu = wait_rusage(sipp, seconds + 70)
        step.wall = time.monotonic() - started
        step.server_cpu = cpu_seconds(server.pid) - cpu_before
        busy = machine_busy_seconds() - busy_before
        step.udp_drops = udp_receive_drops() - drops_before
        step.other_cpu = max(0.0, busy - step.server_cpu - step.sipp_cpu)
    finally:
        stop(server)
    rows = read_stats(stats)
    if rows:
        last = rows[-1]
        step.placed = int(last["OutgoingCall(C)"])
        step.succeeded = int(last["SuccessfulCall(C)"])
        step.failed_sipp = int(last["FailedCall(C)"])
        step.retrans = int(last["Retransmissions(C)"])
        step.achieved = achieved_rate(rows, planned)
    counts = read_counts(folder)
    step.retrans_2xx_received = int(counts.get("4_200_Retrans") or 0)
    return step


# --- report ------------------------------------------------------------------------------------


HEADER = (
    "| server | rate | achieved | calls | failed | failed % | retrans | retrans % "
    "| 2xx rtx recv | server CPU s | CPU/call us | server core % | SIPp CPU s | other CPU s "
    "| UDP drops "
    "| holds |"
)


def row(s: Step) -> str:
    per_call = s.server_cpu / max(s.succeeded, 1) * 1e6
    core = 100.0 * s.server_cpu / s.wall if s.wall else 0.0
    holds = "yes" if s.holds else "no (" + ", ".join(s.reasons) + ")"
    name = s.server + (f" (try {s.attempt})" if s.attempt > 1 else "")
    return (
        f"| {name} | {s.rate} | {s.achieved:.0f} | {s.planned} | {s.failed} "
        f"| {s.failed_pct:.2f} | {s.retrans} | {s.retrans_pct:.2f} | {s.retrans_2xx_received} "
        f"| {s.server_cpu:.1f} | {per_call:.0f} | {core:.0f} | {s.sipp_cpu:.1f} "
        f"| {s.other_cpu:.1f} | {s.udp_drops} | {holds} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description="SIPp uac at stepped call rates against uaconsole serve and an aiosipua "
        "UAS; prints the highest step each holds.",
        epilog="See the module docstring (bench/cps.py) for the definitions.",
    )
    parser.add_argument(
        "--servers",
        default="uaconsole,aiosipua",
        help="comma-separated, run in this order: uaconsole, aiosipua, sipp "
        "(SIPp's own uas) (default uaconsole,aiosipua)",
    )
    parser.add_argument(
        "--rates",
        default=",".join(map(str, DEFAULT_RATES)),
        help="comma-separated calls/s (default %(default)s)",
    )
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=10.0,
        help="seconds of calls per step: -m RATE*SECONDS (default 10)",
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="run every step, even after a failing one"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="repeat a failing step at most this many times when other processes used more "
        "than 5%% of a core during it (default 2)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="before each step, wait at most this long for the machine's other processes to "
        "go quiet (under 0.15 cores busy; default 300; 0: do not wait)",
    )
    parser.add_argument(
        "--keep-logs",
        type=Path,
        metavar="DIR",
        help="keep SIPp's and the servers' files in DIR (default: a temporary folder, removed)",
    )
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for kind in servers:
        if kind not in ("uaconsole", "aiosipua", "sipp"):
            parser.error(f"unknown server {kind!r}")
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    if sipp_missing("cps"):
        return 2
    steps: list[Step] = []
    try:
        with work_folder("cps", args.keep_logs) as work:
            print(
                f"cps: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
                f"{time.strftime('%Y-%m-%d %H:%M %Z')}, load average {load_average()}; "
                f"{args.step_seconds:g} s per step; files in {work}",
                flush=True,
            )
            print(HEADER)
            print("|" + "---|" * (HEADER.count("|") - 1))
            for kind in servers:
                for rate in rates:
                    for attempt in range(1, args.retries + 2):
                        step = run_step(
                            kind, rate, args.step_seconds, work, args.wait_quiet, attempt
                        )
                        steps.append(step)
                        print(row(step), flush=True)
                        if step.holds or not step.disturbed:
                            break
                    if not step.holds and not args.keep_going:
                        break
    except KeyboardInterrupt:
        print("cps: interrupted", file=sys.stderr)
        return 130
    print()
    for kind in servers:
        final = {s.rate: s for s in steps if s.server == kind}  # the last attempt of each rate
        tried = sorted(final.values(), key=lambda s: s.rate)
        held = [s for s in tried if s.holds]
        best = max(held, key=lambda s: s.rate) if held else None
        failing = next((s for s in tried if not s.holds), None)
        text = f"{best.rate} calls/s" if best else "none"
        if best:
            text += f" (server CPU {best.server_cpu / max(best.succeeded, 1) * 1e6:.0f} us/call)"
        text += f"; first failing step: {failing.rate}" if failing else "; no step failed"
        print(f"{kind:10s} highest holding step: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
