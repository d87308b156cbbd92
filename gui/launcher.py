"""The ``uaconsole`` command: the console by default, the headless engine and tools by name."""

import sys
from importlib.metadata import PackageNotFoundError, version


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
    print(f"uaconsole {package_version()}: the engine and the console are not built yet.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
