"""The ``uaconsole`` command: the console by default, the headless engine and tools by name."""

import sys
from importlib.metadata import PackageNotFoundError, version

from engine import cli

USAGE = """\
usage: uaconsole [serve] [options]

  uaconsole            start the operator console (headless engine where there is no display)
  uaconsole serve      run the engine headless (see uaconsole serve --help)
  uaconsole --version  print the version
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
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE, end="")
        return 0
    if args[:1] == ["serve"]:
        return cli.main(args[1:])
    if args[:1] == ["gui"]:
        args = args[1:]
    print("uaconsole: the console window is not built yet; running the engine headless.")
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
