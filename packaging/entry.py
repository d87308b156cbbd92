"""The PyInstaller entry script: the bundle's ``uaconsole`` executable runs gui.launcher.main."""

import sys

from gui.launcher import main

if __name__ == "__main__":
    sys.exit(main())
