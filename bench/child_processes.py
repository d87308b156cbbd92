"""What the load benchmarks share: their child processes (servers, SIPp), loopback ports and
SIPp's statistics files."""

import contextlib
import csv
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # never anything outside 127.0.0.0/8

#: Every child still running, so that a benchmark that stops early can end them all.
CHILDREN: list[subprocess.Popen] = []


def _die_with_parent() -> None:
    """In the child: get SIGKILL if this script dies, however it dies (Linux prctl)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(command: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    """Start ``command`` with its output appended to ``log``; it dies with this script."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    CHILDREN.append(process)
    return process


def stop(process: subprocess.Popen, grace: float = 10.0) -> float:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaps it; the seconds it took to exit."""
    started = time.monotonic()
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process in CHILDREN:
        CHILDREN.remove(process)
    return time.monotonic() - started


def stop_all() -> None:
    """End every child still running."""
    for process in list(CHILDREN):
        stop(process, grace=3.0)


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that nothing is bound to now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def udp_port_bound(port: int) -> bool:
    """True once something listens on UDP ``port`` of 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def venv_tool(name: str) -> str:
    """The project's virtual environment's ``name``, else the one on PATH."""
    path = ROOT / ".venv" / "bin" / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def read_stats(path: Path) -> list[dict[str, str]]:
    """The rows of a SIPp ``-trace_stat`` CSV file (empty when it does not exist yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def sipp_missing(benchmark: str) -> bool:
    """True, with a line on standard error, when SIPp is not installed."""
    if shutil.which("sipp") is not None:
        return False
    print(
        f"{benchmark}: sipp is not installed (Debian: apt-get install sip-tester)", file=sys.stderr
    )
    return True


@contextlib.contextmanager
def work_folder(benchmark: str, keep_logs: Path | None) -> Iterator[Path]:
    """The run's folder for SIPp's and the servers' files: under ``keep_logs`` and kept, or
    temporary and removed. SIGTERM ends the run as an exit; every child is stopped at the end."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if keep_logs:
        keep_logs.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{benchmark}-", dir=keep_logs))
    else:
        work = Path(tempfile.mkdtemp(prefix=f"uaconsole-{benchmark}-"))
    try:
        yield work
    finally:
        stop_all()
        if not keep_logs:
            shutil.rmtree(work, ignore_errors=True)
