"""``uaconsole --self-test``: the engine's steps (:mod:`engine.selftest`), then the console's.

The console's steps need no window and no display: Qt is started on its ``offscreen`` platform.
They prove that an installed copy (a PyInstaller bundle above all) carries what the window needs:
Qt and its platform plugins, every console module, the SVG icon engine, and ``resources/`` (the
icons, SDP templates and default configuration).

``uaconsole --self-test --no-gui`` runs the engine's steps only (a server without Qt's system
libraries).
"""

import argparse
import asyncio
import contextlib
import os
import sys
import time
import tomllib
from pathlib import Path

from engine.api import EngineConfig
from engine.api.loops import use_selector_loop
from engine.selftest import StepFailed, run_self_test

#: The platform plugin a desktop of each system needs (file name stem, without lib/.so/.dll).
NATIVE_PLATFORMS = {"linux": ("qxcb", "qwayland"), "win32": ("qwindows",), "darwin": ("qcocoa",)}


def start_qt() -> str:
    """A QApplication on the offscreen platform, and every console module imported."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QLibraryInfo, qVersion
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "uaconsole"])
    platform = QApplication.platformName()  # type: ignore[attr-defined]
    if platform != "offscreen":
        raise StepFailed(f"Qt started on the {platform!r} platform, not offscreen")
    import gui.app
    import gui.mainwindow  # noqa: F401  (what the window imports, found now rather than later)

    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    present = sorted(_plugin_stem(p) for p in folder.glob("*") if p.is_file())
    wanted = NATIVE_PLATFORMS.get(sys.platform, ())
    if wanted and not any(name in present for name in wanted):
        raise StepFailed(
            f"no {' or '.join(wanted)} platform plugin in {folder} (has: {', '.join(present)}): "
            "the window could not open on this desktop"
        )
    assert app is not None
    return f"Qt {qVersion()}, platforms: {', '.join(p.removeprefix('q') for p in present)}"


def _plugin_stem(path: Path) -> str:
    name = path.name.split(".", 1)[0]
    return name.removeprefix("lib")


def check_resources() -> str:
    """The icons draw (the SVG icon engine works), the SDP templates and the default
    configuration are there, and the configuration is one the engine accepts."""
    from PySide6.QtCore import QSize

    from gui.assets import default_config_text, icon, sdp_templates

    app_icon = icon("app")
    if app_icon.isNull():
        raise StepFailed("the application icon (resources/icons/app.svg) is missing")
    pixmap = app_icon.pixmap(QSize(64, 64))
    if pixmap.isNull() or pixmap.toImage().pixelColor(32, 32).alpha() == 0:
        raise StepFailed("the application icon does not draw: Qt's SVG icon engine is missing")
    templates = sdp_templates()
    if not templates:
        raise StepFailed("no SDP templates (resources/sdp/*.sdp)")
    text = default_config_text()
    if not text:
        raise StepFailed("no default configuration (resources/default.toml)")
    try:
        EngineConfig.from_dict(tomllib.loads(text))
    except Exception as error:
        raise StepFailed(f"the default configuration is refused: {error}") from None
    return f"icons draw, {len(templates)} SDP templates, default configuration accepted"


GUI_STEPS = [
    ("start Qt offscreen and load the console", start_qt),
    ("load icons, SDP templates and the default configuration", check_resources),
]


def main(argv: list[str] | None = None) -> int:
    """``uaconsole --self-test [--no-gui]``: the exit code (0 only if every step passed)."""
    parser = argparse.ArgumentParser(
        prog="uaconsole --self-test",
        description="Place a call between two engines on 127.0.0.1, answer, hold, hang up, "
        "check the event log, then check the console's Qt and resources offscreen.",
    )
    parser.add_argument("--no-gui", action="store_true", help="the engine's steps only")
    args = parser.parse_args(argv)
    extra = [] if args.no_gui else GUI_STEPS
    use_selector_loop()
    return asyncio.run(run_self_test(extra_steps=extra))


# -- startup timing ------------------------------------------------------------------------------

#: Set to print, on standard error, the seconds from launch to the main window shown; set to
#: ``exit`` to also close the window (and end the program) once it is shown. The launch time is
#: ``UACONSOLE_LAUNCHED_AT`` (Unix time, set by whoever starts the program) if given, else the
#: process's start time (Linux: /proc, in 10 ms steps), else ``fallback``.
SHOWN_ENV = "UACONSOLE_REPORT_SHOWN"


def launch_time(fallback: float) -> float:
    """Unix time this process was launched, as well as it can be told."""
    with contextlib.suppress(KeyError, ValueError):
        return float(os.environ["UACONSOLE_LAUNCHED_AT"])
    with contextlib.suppress(OSError, ValueError, IndexError, AttributeError):
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - started)
    return fallback


def report_window_shown(mode: str, fallback: float) -> None:
    """Create the QApplication now and watch for the first main window shown (see SHOWN_ENV)."""
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    launched = launch_time(fallback)
    try:
        from gui.app import make_application

        app = make_application()
    except ImportError:
        app = QApplication.instance() or QApplication(sys.argv[:1])

    class Watcher(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Show and isinstance(obj, QMainWindow):
                elapsed = time.time() - launched
                platform = QApplication.platformName()  # type: ignore[attr-defined]
                print(f"uaconsole: window shown {elapsed:.3f} s after launch ({platform})",
                      file=sys.stderr, flush=True)  # fmt: skip
                app.removeEventFilter(self)
                if mode == "exit":
                    QTimer.singleShot(500, obj.close)
            return False

    app.installEventFilter(Watcher(app))
