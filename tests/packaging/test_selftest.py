"""``uaconsole --self-test`` from source: it passes, it prints one line per step, and it cannot
pass when a step is broken (each broken on purpose here, expecting FAIL and exit code 1).

Every socket is on 127.0.0.1.
"""

import io
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import engine.selftest as selftest
from engine.api import Engine, EngineConfig
from engine.ua.policy import IncomingPolicy
from tests.conftest import PROJECT_ROOT

ENGINE_STEPS = [name for name, _ in selftest.SelfTest(io.StringIO()).steps()]
LINE = re.compile(r"^(ok  |FAIL|skip) (.+)$")


def clean_env(tmp_path: Path) -> dict[str, str]:
    """No display, Qt offscreen, a throwaway home (the self-test must write nothing there)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    return env


def run_cli(
    args: list[str], tmp_path: Path, code: str | None = None
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", *args]
    return subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def step_lines(output: str) -> list[tuple[str, str]]:
    return [m.groups() for line in output.splitlines() if (m := LINE.match(line))]  # type: ignore[misc]


def test_self_test_passes_from_source_offscreen_and_headless(tmp_path: Path) -> None:
    began = time.monotonic()
    result = run_cli(["gui.launcher", "--self-test"], tmp_path)
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr
    lines = step_lines(result.stdout)
    names = [name.split(" (", 1)[0] for _, name in lines]
    assert names[: len(ENGINE_STEPS)] == ENGINE_STEPS
    assert len(lines) == len(ENGINE_STEPS) + 2  # and the console's two steps
    assert all(kind == "ok  " for kind, _ in lines), result.stdout
    assert re.search(r"^self-test passed: 9 steps in \d+\.\d+ s$", result.stdout, re.M)
    assert elapsed < 15, f"the self-test took {elapsed:.1f} s"
    # Nothing written to the user's folders: the event logs went to a temporary folder.
    assert not any(tmp_path.rglob("*.db"))


def test_engine_only_runs_without_qt(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['PySide6'] = None\n"  # any Qt import would fail
        "from gui.launcher import main; sys.exit(main(['--self-test', '--no-gui']))"
    )
    result = run_cli([], tmp_path, code=code)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(step_lines(result.stdout)) == len(ENGINE_STEPS)
    assert "self-test passed: 7 steps" in result.stdout


def test_a_failing_step_makes_the_command_exit_1(tmp_path: Path) -> None:
    # The called engine refuses every call (the caller's configuration): the call fails.
    code = (
        "import sys, engine.selftest as s\n"
        "s.called_config = s.caller_config\n"
        "from gui.launcher import main; sys.exit(main(['--self-test']))"
    )
    result = run_cli([], tmp_path, code=code)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = step_lines(result.stdout)
    assert lines[0][0] == "ok  "
    assert lines[1][0] == "FAIL" and lines[1][1].startswith("place a call: ")
    assert "403" in lines[1][1] or "no incoming INVITE" in lines[1][1], lines[1]
    assert [kind for kind, _ in lines[2:]] == ["skip"] * (len(ENGINE_STEPS) - 2 + 2)
    assert "self-test FAILED at: place a call" in result.stdout


def test_a_failing_console_step_makes_the_command_exit_1(tmp_path: Path) -> None:
    code = (
        "import sys, gui.assets\n"
        "from PySide6.QtGui import QIcon\n"
        "gui.assets.icon = lambda name: QIcon()\n"  # as if resources/icons were not bundled
        "from gui.launcher import main; sys.exit(main(['--self-test']))"
    )
    result = run_cli([], tmp_path, code=code)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL load icons, SDP templates and the default configuration: the application icon" in (
        result.stdout
    )


async def run_broken(monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(selftest, "STEP_TIMEOUT", 1.0)
    out = io.StringIO()
    code = await selftest.run_self_test(out)
    return code, out.getvalue()


def failed_step(output: str) -> tuple[str, str]:
    fails = [name for kind, name in step_lines(output) if kind == "FAIL"]
    assert len(fails) == 1, output
    name, _, reason = fails[0].partition(": ")
    return name, reason


async def test_engine_steps_pass_in_process() -> None:
    out = io.StringIO()
    assert await selftest.run_self_test(out) == 0, out.getvalue()
    assert [k for k, _ in step_lines(out.getvalue())] == ["ok  "] * len(ENGINE_STEPS)


async def test_no_answer_fails_answer_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # The called engine rings (180) but nobody answers.
    called_config = selftest.called_config

    def ringing(port: int = 0) -> EngineConfig:
        return replace(called_config(port), incoming=IncomingPolicy.from_shortcut("manual"))

    monkeypatch.setattr(selftest, "called_config", ringing)
    code, output = await run_broken(monkeypatch)
    assert code == 1
    name, reason = failed_step(output)
    assert name == "answer it" and "no 200 OK to the INVITE" in reason


async def test_reinvite_without_hold_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selftest, "set_direction", lambda sdp, direction: sdp)
    code, output = await run_broken(monkeypatch)
    assert code == 1
    name, reason = failed_step(output)
    assert name == "re-INVITE to hold the call" and "does not offer sendonly" in reason


async def test_reinvite_rejected_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real_reply = Engine.reply

    async def reject_reinvites(self, key, method, code, reason, **kw):  # type: ignore[no-untyped-def]
        if method == "INVITE" and code == 200:
            code, reason, kw = 488, "Not Acceptable Here", {}
        await real_reply(self, key, method, code, reason, **kw)

    monkeypatch.setattr(Engine, "reply", reject_reinvites)
    code, output = await run_broken(monkeypatch)
    assert code == 1
    name, reason = failed_step(output)
    assert name == "re-INVITE to hold the call" and "488" in reason


async def test_hang_up_that_sends_nothing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_bye(self, key, **kw):  # type: ignore[no-untyped-def]
        return None

    monkeypatch.setattr(Engine, "terminate", no_bye)
    code, output = await run_broken(monkeypatch)
    assert code == 1
    name, reason = failed_step(output)
    assert name == "hang up" and "no BYE" in reason


async def test_event_log_missing_events_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.store import History

    real_events = History.events
    monkeypatch.setattr(
        History, "events", lambda self, key: [e for e in real_events(self, key)
                                              if e["event_type"] != "TERMINATED"]
    )  # fmt: skip
    code, output = await run_broken(monkeypatch)
    assert code == 1
    name, reason = failed_step(output)
    assert name == "find the call in the event log" and "no TERMINATED event" in reason


async def test_event_log_that_cannot_open_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.store import EventLog

    real_init = EventLog.__init__

    def to_nowhere(self, path, **kw):  # type: ignore[no-untyped-def]
        real_init(self, Path("/proc/uaconsole-nowhere") / Path(path).name, **kw)

    monkeypatch.setattr(EventLog, "__init__", to_nowhere)
    code, output = await run_broken(monkeypatch)
    assert code == 1
    name, reason = failed_step(output)
    assert name == "start two engines on loopback" and "event log cannot be used" in reason


async def test_an_unexpected_error_is_a_failure_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(**kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("offer_sdp broke")

    monkeypatch.setattr(selftest, "offer_sdp", boom)
    code, output = await run_broken(monkeypatch)
    assert code == 1
    assert failed_step(output) == ("place a call", "RuntimeError: offer_sdp broke")
    assert output.rstrip().splitlines()[-1].startswith("self-test FAILED at: place a call")


async def test_a_failing_extra_step_fails_the_run() -> None:
    def broken() -> str:
        raise selftest.StepFailed("Qt is missing")

    out = io.StringIO()
    code = await selftest.run_self_test(out, extra_steps=[("console", broken), ("more", str)])
    assert code == 1
    assert "FAIL console: Qt is missing\nskip more\n" in out.getvalue()


def test_window_shown_time_is_reported(tmp_path: Path) -> None:
    """UACONSOLE_REPORT_SHOWN=exit: the console prints the seconds from launch to its window
    shown, then closes (how the startup time in the README was measured)."""
    env = clean_env(tmp_path)
    env.update(UACONSOLE_REPORT_SHOWN="exit", UACONSOLE_LAUNCHED_AT=f"{time.time():.6f}")
    result = subprocess.run(
        [sys.executable, "-m", "gui.launcher", "--listen", "udp:127.0.0.1:0", "--no-mi", "--no-db"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    m = re.search(
        r"^uaconsole: window shown (\d+\.\d+) s after launch \(offscreen\)$", result.stderr, re.M
    )
    assert m, result.stderr
    assert 0 < float(m.group(1)) < 30
