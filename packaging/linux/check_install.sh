#!/usr/bin/env bash
# Install a UA Console .deb on this machine with apt-get (which fetches its Depends), run the
# installed `uaconsole --version` and `--self-test` offscreen from the PATH, remove it with
# `apt-get purge`, and check that nothing it installed is left. Run as root (or with sudo) on a
# Debian/Ubuntu machine you may change: .ci/run and .github/workflows/build.yml do.
#
#   bash packaging/linux/check_install.sh dist/uaconsole_0.1.0_amd64.deb
set -euo pipefail
deb="$(realpath "${1:?usage: check_install.sh PATH.deb}")"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

$SUDO apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
files="$(dpkg -L uaconsole)"
for path in /opt/uaconsole/uaconsole /usr/bin/uaconsole /usr/share/applications/uaconsole.desktop \
    /usr/share/icons/hicolor/scalable/apps/uaconsole.svg; do
    grep -qx "$path" <<<"$files" || { echo "check_install: $path is not in the package"; exit 1; }
    [ -e "$path" ] || { echo "check_install: $path was not installed"; exit 1; }
done
[ "$(command -v uaconsole)" = /usr/bin/uaconsole ] || { echo "check_install: uaconsole is not on the PATH"; exit 1; }

home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
run() { env -u DISPLAY -u WAYLAND_DISPLAY HOME="$home" QT_QPA_PLATFORM=offscreen PATH=/usr/bin:/bin "$@"; }
run uaconsole --version
start=$(date +%s.%N)
run uaconsole --self-test
echo "check_install: the installed self-test took $(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $start }") s"

$SUDO apt-get purge -y -qq uaconsole >/dev/null
left=""
while read -r path; do
    # Folders shared with other packages (/usr/share/icons/...) stay; files and our own folders go.
    if [ -e "$path" ] || [ -L "$path" ]; then
        if [ ! -d "$path" ] || [[ "$path" == /opt/uaconsole* ]] || [[ "$path" == /usr/share/doc/uaconsole* ]]; then
            left+="$path"$'\n'
        fi
    fi
done <<<"$files"
if [ -n "$left" ]; then
    echo "check_install: left after apt-get purge:"
    printf '%s' "$left" | head -20
    exit 1
fi
if dpkg -s uaconsole >/dev/null 2>&1; then echo "check_install: dpkg still knows uaconsole"; exit 1; fi
echo "check_install: installed, self-tested and removed cleanly: $(basename "$deb")"
