"""Fixtures of the console tests: one qasync loop on pytest-qt's QApplication, a console with its
embedded engine on an ephemeral loopback port, SIPp runs, and screenshots.

Tests are plain functions that run a coroutine with ``run(...)``: the coroutine runs on the
qasync loop, which is Qt's event loop, so widgets repaint and signals flow while it waits.
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage

from tests.conftest import PROJECT_ROOT, require_tool

SCENARIOS = Path(__file__).parent / "scenarios"
ARTIFACTS = PROJECT_ROOT / "tests" / "_artifacts"
T = TypeVar("T")


@pytest.fixture(scope="session", autouse=True)
def _qt_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """QSettings (layout, recent values) in a throwaway folder, never the user's."""
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))


@pytest.fixture(scope="session")
def qloop(qapp: Any) -> Iterator[asyncio.AbstractEventLoop]:
    """The qasync loop of the test session."""
    import qasync

    from gui.app import make_application

    make_application()
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    yield loop
    with contextlib.suppress(Exception):
        loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def run(qloop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """``run(coroutine, timeout=30)``: run it on the qasync loop and return its result."""

    def runner(coro: Awaitable[T], timeout: float = 30.0) -> T:
        return qloop.run_until_complete(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]

    return runner


async def wait_until(
    condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll ``condition`` on the loop until it is true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sipp:
    """One SIPp process on 127.0.0.1, its output kept in the test's folder."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.args = args
        self.cwd = cwd
        self.log = cwd / f"sipp-{len(list(cwd.glob('sipp-*.log')))}.log"
        self._out = self.log.open("wb")
        self.process = subprocess.Popen(
            args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT
        )

    async def wait(self, timeout: float = 20.0) -> int:
        """Its exit code (0: every call succeeded)."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"SIPp did not finish: {self.output()[-2000:]}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    def output(self) -> str:
        """What SIPp printed, and its error log."""
        self._out.flush()
        text = self.log.read_text(errors="replace")
        for path in self.cwd.glob("*_errors.log"):
            text += "\n" + path.read_text(errors="replace")
        return text

    def stop(self) -> None:
        """Stop it if it still runs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """``sipp(*args)``: start SIPp bound to 127.0.0.1 (stopped after the test)."""
    binary = require_tool("sipp")
    started: list[Sipp] = []

    def start(*args: str) -> Sipp:
        command = [
            binary,
            *args,
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "40s",
            "-timeout_error",
            "-trace_err",
        ]
        process = Sipp(command, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def make_console(qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Any]:
    """``make_console(*flags)``: a main window with its embedded engine (udp:127.0.0.1:0,
    manual answering, no MI, no event log unless the flags say otherwise)."""
    from gui.app import Console, argument_parser
    from gui.mainwindow import MainWindow

    made: list[Any] = []

    def make(*flags: str) -> Any:
        base = ["--config", str(tmp_path / "uaconsole.toml"), "--no-mi"]
        if "--listen" not in flags:
            base += ["--listen", "udp:127.0.0.1:0"]
        if "--db" not in flags:
            base.append("--no-db")
        app = Console(argument_parser().parse_args([*base, *flags]))
        window = MainWindow(app.hub, app)
        window.resize(1280, 860)
        window.show()
        qloop.run_until_complete(app.start())
        window.backend_changed()
        app.window = window  # type: ignore[attr-defined]
        made.append(app)
        return app

    yield make
    for app in reversed(made):  # clients before the servers they talk to
        window = app.window
        for form in list(window.forms):
            form.close()
        window.close()
        with contextlib.suppress(Exception):
            qloop.run_until_complete(asyncio.wait_for(app.stop(), 10))
        if app.gc_policy is not None:
            app.gc_policy.stop()
        window.deleteLater()


@pytest.fixture
def console(make_console: Any) -> Any:
    """A console with the default test flags."""
    return make_console()


def engine_port(app: Any) -> int:
    """The UDP port the console's engine listens on."""
    return int(app.backend.listeners[0].rsplit(":", 1)[1])


def screenshot(widget: Any, name: str) -> Path:
    """Save ``widget`` to tests/_artifacts/NAME.png and check the image is not blank."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pixmap = widget.grab()
    assert pixmap.save(str(path)), f"could not write {path}"
    assert_not_blank(pixmap.toImage(), name)
    return path


def assert_not_blank(image: QImage, name: str) -> None:
    """Fail when the image is one colour (an empty or black grab)."""
    assert image.width() > 50 and image.height() > 50, f"{name}: image too small"
    colours = set()
    step_x, step_y = max(1, image.width() // 60), max(1, image.height() // 60)
    for x in range(0, image.width(), step_x):
        for y in range(0, image.height(), step_y):
            colours.add(image.pixel(x, y))
            if len(colours) > 8:
                return
    raise AssertionError(f"{name}: the screenshot is blank ({len(colours)} colours)")


@pytest.fixture
def registrar(qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Any]:
    """The Kamailio registrar and proxy of tests/kamailio (users alice and bob, password
    "secret", domain ua.test) on a free port of 127.0.0.1, run on the qasync loop. Ask for it
    before ``make_console``, so that the consoles stop (and unregister) before it does."""
    from tests.kamailio.conftest import Kamailio

    server = Kamailio(tmp_path)
    qloop.run_until_complete(asyncio.wait_for(server.start(), 20))
    yield server
    qloop.run_until_complete(asyncio.wait_for(server.stop(), 20))


def write_config(app_dir: Path, document: dict[str, Any]) -> Path:
    """Write ``uaconsole.toml`` (the file ``make_console`` reads) in ``app_dir``."""
    from gui.settings import save_document

    path = app_dir / "uaconsole.toml"
    save_document(path, document)
    return path
