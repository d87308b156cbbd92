"""The console application: QApplication + qasync, the engine embedded, the main window.

One thread: qasync runs asyncio on Qt's event loop, so the engine's sockets and timers and the
window share it. ``Console`` owns the configuration document, the backend and the hub; the window
asks it to restart the engine when the settings change.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from engine import cli
from engine.api import EngineConfig
from engine.api.config import ConfigError

try:  # the event log may be absent from an older engine
    from engine.store.options import add_store_arguments, store_options
except ImportError:  # pragma: no cover
    add_store_arguments = store_options = None  # type: ignore[assignment]

from .backend import EmbeddedBackend, RemoteBackend
from .gcpolicy import GcPolicy
from .hub import SessionHub
from .settings import default_config_path, gui_settings, load_document

log = logging.getLogger("uaconsole.gui")

#: Settings whose change needs a new engine (the rest apply at once).
_ENGINE_TABLES = ("engine", "incoming", "mi", "store", "accounts")


def argument_parser() -> argparse.ArgumentParser:
    """``uaconsole [gui]`` takes the flags of ``uaconsole serve``."""
    parser = argparse.ArgumentParser(
        prog="uaconsole", description="The UA Console operator window (engine embedded)."
    )
    cli.add_serve_arguments(parser)
    if add_store_arguments is not None and not any(a.dest == "db" for a in parser._actions):
        add_store_arguments(parser)
    group = parser.add_argument_group("remote engine")
    group.add_argument(
        "--remote",
        metavar="URL",
        help="drive a running `uaconsole serve` or OpenSIPS 3.4 over MI instead of embedding "
        "the engine, e.g. http://127.0.0.1:8888/mi",
    )
    group.add_argument(
        "--remote-token-file", type=Path, metavar="FILE", help="bearer token for --remote"
    )
    return parser


class Console:
    """The configuration, the embedded engine and what the window needs from them."""

    def __init__(self, args: argparse.Namespace, hub: SessionHub | None = None) -> None:
        self.args = args
        self.config_path: Path = args.config or default_config_path()
        self.config_problem: str | None = None
        try:
            self.document = load_document(self.config_path, create=args.config is None)
        except ConfigError as error:
            self.config_problem = str(error)
            self.document = {}
        self.hub = hub or SessionHub()
        self.backend: EmbeddedBackend | RemoteBackend | None = None
        #: (url, token) of the remote engine in use, None for the embedded one.
        self.remote: tuple[str, str | None] | None = None
        if getattr(args, "remote", None):
            token = None
            if args.remote_token_file:
                try:
                    token = args.remote_token_file.read_text().strip()
                except OSError as error:
                    self.config_problem = f"cannot read {args.remote_token_file}: {error}"
            self.remote = (args.remote, token)
        self.mi_server: Any = None
        self.mi_problem: str | None = None
        self.event_log: Any = None
        self.store_status: Any = None
        self.gc_policy: GcPolicy | None = None
        self.apply_document(self.document)

    # -- configuration ---------------------------------------------------------------------------

    @property
    def gui(self) -> dict[str, Any]:
        """The [gui] table with defaults."""
        return gui_settings(self.document)

    def engine_config(self) -> EngineConfig:
        """The document's engine configuration with the command-line flags on top."""
        args = self.args
        try:
            config = EngineConfig.from_dict(self.document)
        except ConfigError as error:
            self.config_problem = f"{self.config_path}: {error}"
            config = EngineConfig()
        else:
            if self.config_problem and "cannot read" not in self.config_problem:
                self.config_problem = None
        overrides = {
            "listen": args.listen,
            "credentials": args.credential,
            "advertised_contact": args.advertised_contact,
            "t1": args.t1,
            "log_level": args.log_level,
        }
        try:
            config = config.with_values(overrides, prefix="--")
            if args.incoming:
                config = config.with_incoming(args.incoming)
        except ConfigError as error:
            self.config_problem = str(error)
        return config

    def apply_document(self, document: dict[str, Any]) -> None:
        """Take settings that need no restart (the [gui] table)."""
        self.document = document
        keep = self.gui.get("keep_ended", 300)
        if isinstance(keep, int | float) and not isinstance(keep, bool):
            self.hub.keep_ended = float(keep)

    def needs_restart(self, document: dict[str, Any]) -> bool:
        """True when ``document`` changes what the engine was started with."""
        if self.remote is not None:
            return False
        if self.backend is None or self.backend.start_error:
            return True
        return any(document.get(t) != self.document.get(t) for t in _ENGINE_TABLES)

    def _with_file_args(self) -> argparse.Namespace:
        """The flags, with --config pointing at the file when it exists."""
        args = argparse.Namespace(**vars(self.args))
        args.config = self.config_path if self.config_path.exists() else None
        return args

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine, its event log and its MI listener; problems are kept, not raised."""
        if self.gc_policy is None:
            self.gc_policy = GcPolicy(self.hub)  # no long collector pauses
        if self.remote is not None:
            remote = RemoteBackend(self.remote[0], token=self.remote[1])
            self.backend = remote
            await remote.start()
            self.hub.attach(remote)
            if remote.start_error is None:
                await remote.resync()  # now that the hub listens
            self.hub.backendChanged.emit()
            return
        backend = EmbeddedBackend(self.engine_config())
        self.backend = backend
        await self._start_event_log(backend)
        await backend.start()
        self.hub.attach(backend)
        if backend.start_error is None:
            await self._start_mi(backend)
        self.hub.backendChanged.emit()

    async def connect_remote(self, url: str, token: str | None = None) -> None:
        """Drive a remote engine from now on (the embedded one stops)."""
        await self.stop()
        self.remote = (url, token)
        await self.start()

    async def use_embedded(self) -> None:
        """Back to the embedded engine."""
        await self.stop()
        self.remote = None
        await self.start()

    async def _start_event_log(self, backend: EmbeddedBackend) -> None:
        self.event_log = None
        if store_options is None:
            return
        try:
            options = store_options(self._with_file_args())
            event_log = options.event_log()
            if event_log is None:
                return
            self.store_status = await event_log.start(backend.engine)
            self.event_log = event_log
        except Exception as error:  # the console runs without history rather than not at all
            self.store_status = None
            log.warning("event log off: %s", error)

    async def _start_mi(self, backend: EmbeddedBackend) -> None:
        self.mi_server = None
        self.mi_problem = None
        start = getattr(cli, "start_mi_server", None)
        config_of = getattr(cli, "mi_config_from_args", None)
        if start is None or config_of is None:
            return
        try:
            config = config_of(self._with_file_args())
            if not getattr(config, "enabled", True):
                return
            self.mi_server = await start(backend.engine, config)
        except Exception as error:
            self.mi_problem = f"the control API (MI) could not start: {error}"
            log.warning("%s", self.mi_problem)

    async def stop(self) -> None:
        """Stop the MI listener, the engine and the event log."""
        stop_mi = getattr(cli, "stop_mi_server", None)
        if self.mi_server is not None and stop_mi is not None:
            with contextlib.suppress(Exception):
                await stop_mi(self.mi_server)
        self.mi_server = None
        self.hub.detach()
        if self.backend is not None:
            await self.backend.stop()
        self.backend = None
        if self.event_log is not None:
            with contextlib.suppress(Exception):
                self.store_status = await self.event_log.stop()
        self.event_log = None

    async def restart(self, document: dict[str, Any]) -> None:
        """Stop, take the new settings, start again."""
        await self.stop()
        self.apply_document(document)
        await self.start()

    @property
    def mi_url(self) -> str | None:
        """The MI endpoint when it runs."""
        return getattr(self.mi_server, "url", None)


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), with the names QSettings uses."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv or sys.argv[:1])
    QCoreApplication.setOrganizationName("UA Console")
    QCoreApplication.setApplicationName("uaconsole")
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    return app


async def run_window(console: Console) -> int:
    """Start the engine, show the window, wait for it to close, stop the engine."""
    from .mainwindow import MainWindow

    window = MainWindow(console.hub, console)
    closed = asyncio.get_running_loop().create_future()
    window.closed.connect(lambda: closed.done() or closed.set_result(None))
    heartbeat = _quit_on_signals(window)
    window.show()
    await console.start()
    window.backend_changed()
    await closed
    heartbeat.stop()
    await console.stop()
    return 0


def _quit_on_signals(window: Any) -> QTimer:
    """Ctrl+C and SIGTERM close the window (and so stop the engine properly).

    Python runs signal handlers only between bytecodes; while Qt waits in C++ it never does, so
    a light timer lets it look in four times a second."""

    def close(*_: Any) -> None:
        QTimer.singleShot(0, window.close)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):  # not in the main thread, or no such signal
            signal.signal(sig, close)
    heartbeat = QTimer()
    heartbeat.setInterval(250)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start()
    return heartbeat


def run(argv: list[str]) -> int:
    """``uaconsole [gui] [flags]``: the exit code."""
    import qasync

    args = argument_parser().parse_args(argv)
    cli.setup_logging(args.log_level or "warning")
    app = make_application()
    from .assets import icon

    app.setWindowIcon(icon("app"))
    # A selector loop on every system: the engine's UDP sockets need add_reader, which qasync's
    # default loop on Windows (IOCP) lacks.
    loop = qasync.QSelectorEventLoop(app)
    asyncio.set_event_loop(loop)
    console = Console(args)
    with loop:
        return loop.run_until_complete(run_window(console))
