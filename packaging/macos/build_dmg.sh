#!/usr/bin/env bash
# The macOS disk image: "UA Console.app" (PyInstaller BUNDLE of packaging/uaconsole.spec) and a
# link to /Applications, compressed with hdiutil (part of macOS; nothing to install).
#
#   bash packaging/macos/build_dmg.sh          # on macOS 11+, from the repository root
#
# Needs Python 3.11+ with the project installed (pip install -e '.[package]'). Output:
# dist/uaconsole-VERSION-macos-ARCH.dmg. It then mounts the image read-only and runs the
# bundled `uaconsole --self-test` offscreen from it, and fails if that fails.
#
# Signing: ad hoc only (codesign -s -), enough to run on the machine that built it and on Apple
# silicon; a copy downloaded by a browser is quarantined by Gatekeeper until it is signed with a
# Developer ID and notarized (xcrun notarytool), which needs an Apple developer account: not done.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(uname -s)" = Darwin ] || { echo "build_dmg.sh: runs on macOS only (hdiutil, codesign)"; exit 1; }
PYTHON="${PYTHON:-python3}"
VERSION="$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
ARCH="$(uname -m)"
APP="dist/UA Console.app"
DMG="dist/uaconsole-${VERSION}-macos-${ARCH}.dmg"

QT_QPA_PLATFORM=offscreen "$PYTHON" packaging/icons.py build/icons
rm -rf "$APP" dist/uaconsole
"$PYTHON" -m PyInstaller --noconfirm --workpath build/pyinstaller --distpath dist packaging/uaconsole.spec
codesign --force --deep --sign - "$APP"
codesign --verify --deep --strict "$APP"

# The bundle itself first: --version and the self-test, offscreen.
"$APP/Contents/MacOS/uaconsole" --version
QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/uaconsole" --self-test

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "UA Console" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"

# The image as a user gets it: mount read-only, run the self-test from it, detach.
MOUNT="$(mktemp -d)"
hdiutil attach -nobrowse -readonly -mountpoint "$MOUNT" "$DMG" >/dev/null
status=0
QT_QPA_PLATFORM=offscreen "$MOUNT/UA Console.app/Contents/MacOS/uaconsole" --self-test || status=$?
hdiutil detach "$MOUNT" >/dev/null
[ "$status" -eq 0 ] || { echo "build_dmg.sh: the self-test failed in the mounted image"; exit 1; }
du -sh "$APP" "$DMG"
