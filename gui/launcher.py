"""The ``uaconsole`` command: the console by default, the headless engine and tools by name."""

import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version

from engine import cli

#: When this module was imported (the launch time where no better one is known).
_IMPORTED_AT = time.time()

USAGE = """\
usage: uaconsole [gui|serve|mi|history] [options]

  uaconsole [gui]      open the operator console with the engine embedded (takes the flags of
                       serve; where there is no display, runs the engine headless instead)
  uaconsole serve      run the engine headless (see uaconsole serve --help)
  uaconsole mi COMMAND [name=value ...]
                       run one control-API (MI) command and print its JSON result
  uaconsole history list|show|search|export ...
                       look back at logged calls (see uaconsole history --help)
  uaconsole --version  print the version
  uaconsole --self-test [--no-gui]
                       call itself on 127.0.0.1 (answer, hold, hang up), check the event log
                       and the console's Qt and resources offscreen; exit 0 only if all passed
"""


def package_version() -> str:
    """The installed version of UA Console."""
    try:
        return version("uaconsole")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``uaconsole`` console script."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["--version"], ["-V"]):
        print(f"uaconsole {package_version()}")
        return 0
    if args[:1] == ["--self-test"]:
        from gui.selftest import main as self_test

        return self_test(args[1:])
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE, end="")
        return 0
    if args[:1] == ["serve"]:
        return cli.main(args[1:])
    if args[:1] == ["mi"]:
        return cli.mi_main(args[1:])
    if args[:1] == ["history"]:
        return cli.history_main(args[1:])
    if args[:1] == ["gui"]:
        args = args[1:]
    if any(a in ("-h", "--help") for a in args):
        from gui.app import argument_parser

        argument_parser().print_help()
        return 0
    reason = no_display_reason()
    if reason is not None:
        print(f"uaconsole: {reason}; running the engine headless (as `uaconsole serve`).")
        return cli.main(args)
    try:
        from gui.app import run
    except ImportError as error:  # Qt's system libraries missing: still do the job headless
        print(f"uaconsole: the window cannot start ({error}); running the engine headless.")
        return cli.main(args)
    shown = os.environ.get("UACONSOLE_REPORT_SHOWN")
    if shown:  # print the time from launch to the window shown (see gui.selftest)
        from gui.selftest import report_window_shown

        report_window_shown(shown, _IMPORTED_AT)
    return run(args)


#: Qt platform plugins that need no display server.
_HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def no_display_reason(
    environ: "dict[str, str] | None" = None, platform: str = sys.platform
) -> str | None:
    """Why no window can be shown here (None when one can).

    Linux and the BSDs need X11 (DISPLAY) or Wayland (WAYLAND_DISPLAY), unless QT_QPA_PLATFORM
    names a plugin that draws without one (offscreen, vnc...). Windows and macOS always have one.
    """
    env = os.environ if environ is None else environ
    if platform.startswith(("win", "darwin", "cygwin")):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    if qpa in _HEADLESS_PLATFORMS:
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"


if __name__ == "__main__":
    sys.exit(main())
