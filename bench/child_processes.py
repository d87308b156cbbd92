"""What the load benchmarks share: their child processes (servers, SIPp), loopback ports and
SIPp's statistics files."""

import contextlib
import csv
import ctypes
import shutil
import signal
import socket
import subprocess
import time
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
