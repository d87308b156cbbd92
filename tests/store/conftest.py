"""Helpers for the event log tests. Every socket is on 127.0.0.1.

- ``engine``: an Engine on a free UDP port of 127.0.0.1 that answers every call at once.
- ``loopback_call(engine)``: the engine calls itself (a UAC and a UAS session), hangs up, and
  waits until both sessions ended.
- ``free_udp_port()``, ``serve_process(...)``: ``uaconsole serve`` in a child process.
- ``small_mount(...)``: a tiny tmpfs (root only), for the full-disk and read-only cases.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.api.config import EngineConfig
from engine.api.engine import Engine
from engine.api.streams import Gap
from engine.transport.spec import ListenSpec
from engine.ua.events import EventType

PROJECT = Path(__file__).resolve().parents[2]
WAIT = 10.0


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def engine_config(port: int = 0) -> EngineConfig:
    return EngineConfig(listen=(ListenSpec.parse(f"udp:127.0.0.1:{port}"),)).with_incoming(
        "auto-answer"
    )


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    """A started engine on 127.0.0.1 that auto-answers; stopped after the test."""
    e = Engine(engine_config())
    await e.start()
    yield e
    if e.running:
        await e.stop()


async def loopback_call(
    engine: Engine, *, caller: str = "Alice,sip:alice@127.0.0.1", hold: float = 0.05
) -> tuple[str, str]:
    """The engine calls itself, waits ``hold`` s, hangs up; (UAC key, UAS key) once both ended."""
    events = engine.events()
    port = engine.listeners[0].port
    uac = await engine.client_start(
        f"sip:bob@127.0.0.1:{port}", f"Bob,sip:bob@127.0.0.1:{port}", caller
    )
    uas = None
    ended: set[str] = set()

    async def follow() -> None:
        nonlocal uas
        hung_up = False
        async for event in events:
            if isinstance(event, Gap):
                continue
            if event.event_type == EventType.NEW and event.callid == uac:
                uas = event.key
            if event.key == uac and event.event_type == EventType.ANSWERED and not hung_up:
                hung_up = True
                await asyncio.sleep(hold)
                await engine.terminate(uac)
            if event.event_type == EventType.TERMINATED:
                ended.add(event.key)
            if uas is not None and {uac, uas} <= ended:
                return

    try:
        await asyncio.wait_for(follow(), WAIT)
    finally:
        events.close()
    assert uas is not None
    return uac, uas


@contextlib.contextmanager
def serve_process(
    port: int, *args: str, log: Path, incoming: str = "auto-answer"
) -> Iterator[subprocess.Popen]:
    """``uaconsole serve --incoming INCOMING`` on udp:127.0.0.1:PORT, ready to take calls.
    Stopped with SIGINT (unless the test killed it) when the block ends."""
    command = [
        sys.executable, "-m", "gui.launcher", "serve", "--incoming", incoming,
        "--listen", f"udp:127.0.0.1:{port}", "--no-mi", "--log-level", "warning", *args,
    ]  # fmt: skip
    out = log.open("w")
    process = subprocess.Popen(
        command, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + WAIT
        while "listening on" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"uaconsole serve did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        out.close()


@contextlib.contextmanager
def small_mount(path: Path, size: str = "64k", read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (root only; skips where mount is refused)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"mount refused here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount_read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
