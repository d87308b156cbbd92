"""Startup and self-test times of the source install and of a bundle, offscreen.

    .venv/bin/python packaging/measure.py [--bundle PATH/TO/uaconsole] [--runs 5]

For each program: ``--version`` (process start to exit), ``--self-test`` (start to exit), and
the time from launch to the main window shown (``UACONSOLE_REPORT_SHOWN=exit``, see
gui/selftest.py), each run ``--runs`` times; prints the median and the range. Every run gets a
throwaway HOME and listens on 127.0.0.1 only.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOWN = re.compile(r"window shown (\d+\.\d+) s after launch")


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
    )
    return env


def timed(command: list[str], extra: dict[str, str] | None = None) -> tuple[float, str]:
    """Seconds from start to exit (or to the window, when the program reports it)."""
    with tempfile.TemporaryDirectory() as home:
        env = environment(Path(home))
        env.update(extra or {})
        env["UACONSOLE_LAUNCHED_AT"] = f"{time.time():.6f}"
        began = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    m = SHOWN.search(result.stderr)
    return (float(m.group(1)) if m else elapsed), result.stdout


def measure(name: str, program: list[str], runs: int) -> None:
    window = [*program, "--listen", "udp:127.0.0.1:0", "--no-mi", "--no-db"]
    cases = [
        ("--version", [*program, "--version"], None),
        ("--self-test", [*program, "--self-test"], None),
        ("launch to window shown", window, {"UACONSOLE_REPORT_SHOWN": "exit"}),
    ]
    timed([*program, "--version"])  # warm the page cache once
    for label, command, extra in cases:
        samples = [timed(command, extra)[0] for _ in range(runs)]
        print(
            f"{name:8} {label:24} median {statistics.median(samples):.3f} s "
            f"(min {min(samples):.3f}, max {max(samples):.3f}, {runs} runs)",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="the bundle's uaconsole executable")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    measure("source", [str(Path(sys.executable).parent / "uaconsole")], args.runs)
    if args.bundle:
        measure("bundle", [str(args.bundle)], args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
