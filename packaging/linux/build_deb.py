"""Build ``dist/uaconsole_VERSION_ARCH.deb`` (what ``make package`` runs).

    .venv/bin/python packaging/linux/build_deb.py [--out DIR] [--bundle DIR] [-Z xz|gzip|zstd]

1. the icons (packaging/icons.py) into build/icons;
2. the PyInstaller bundle (packaging/uaconsole.spec, UACONSOLE_SYSTEM_LIBS=1: the shared
   libraries Debian provides are left to Debian) into build/deb-bundle/uaconsole, unless
   ``--bundle`` names one already built that way;
3. the package tree: the bundle in /opt/uaconsole, /usr/bin/uaconsole (a symbolic link to it),
   the .desktop entry, the icons in the hicolor theme, the copyright file;
4. DEBIAN/control with Depends read off the bundle (packaging/linux/debdeps.py) and md5sums;
5. ``dpkg-deb --root-owner-group --build``: no fakeroot, no maintainer scripts (the icon cache
   and the desktop database are refreshed by their packages' dpkg triggers), so removal leaves
   nothing behind.

Needs dpkg-deb, ldd and objdump (Debian: dpkg, libc-bin, binutils) and PyInstaller (the
``package`` extra of pyproject.toml).
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "packaging"))

import debdeps  # noqa: E402
import icons  # noqa: E402

PACKAGE = "uaconsole"
MAINTAINER = "UA Console developers <uaconsole@localhost>"
SUMMARY = "SIP user agent with an operator console and an OpenSIPS-compatible API"
DESCRIPTION = """\
 UA Console places, answers and watches SIP calls (RFC 3261). Its engine does
 the transaction and dialog work; an operator in the desktop window, a script
 or another program decides what to reply and which requests to send, over an
 API compatible with OpenSIPS 3.4's b2b_entities UA-session MI commands.
 .
 Every event and SIP message is logged to SQLite; calls can be exported as
 pcap, SIPp scenarios, JSON lines or CSV. `uaconsole --self-test` checks an
 installed copy: it places a call to itself on 127.0.0.1."""
COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: uaconsole

Files: *
Copyright: UA Console developers
License: MIT

Files: opt/uaconsole/_internal/PySide6/* opt/uaconsole/_internal/shiboken6/*
Copyright: The Qt Company Ltd.
License: LGPL-3.0-only
 Qt for Python (PySide6), from its PyPI wheel, unmodified.

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of
 this software and associated documentation files, to deal in the Software
 without restriction, subject to the MIT License's conditions.
"""


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"build_deb: {tool} is missing (Debian: apt-get install {package})")
    return path


def build_bundle(out: Path, icon_dir: Path) -> Path:
    """Run PyInstaller; the bundle folder."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        sys.exit("build_deb: PyInstaller is missing (.venv/bin/pip install -e '.[package]')")
    work = ROOT / "build" / "pyinstaller-deb"
    env = dict(os.environ, UACONSOLE_SYSTEM_LIBS="1", QT_QPA_PLATFORM="offscreen")
    command = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--workpath", str(work), "--distpath", str(out), str(ROOT / "packaging" / "uaconsole.spec"),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    return out / PACKAGE


def stage(bundle: Path, tree: Path, icon_dir: Path) -> None:
    """The package's files under ``tree``."""
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(bundle, tree / "opt" / PACKAGE, symlinks=True)
    bin_dir = tree / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / PACKAGE).symlink_to(f"/opt/{PACKAGE}/{PACKAGE}")
    share = tree / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copyfile(HERE / "uaconsole.desktop", share / "applications" / "uaconsole.desktop")
    hicolor = share / "icons" / "hicolor"
    (hicolor / "scalable" / "apps").mkdir(parents=True)
    shutil.copyfile(icon_dir / "uaconsole.svg", hicolor / "scalable" / "apps" / "uaconsole.svg")
    for size in icons.HICOLOR_SIZES:
        folder = hicolor / f"{size}x{size}" / "apps"
        folder.mkdir(parents=True)
        shutil.copyfile(icon_dir / "png" / f"{size}x{size}.png", folder / "uaconsole.png")
    doc = share / "doc" / PACKAGE
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    normalise_modes(tree)


def normalise_modes(tree: Path) -> None:
    """Folders 0755; files 0755 if executable by their owner, else 0644."""
    for path in [tree, *tree.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)


def installed_size_kib(tree: Path) -> int:
    total = 0
    for path in tree.rglob("*"):
        if path.is_symlink() or not path.is_file():
            total += 1024  # dpkg counts each entry as at least 1 KiB
        else:
            total += max(1024, path.stat().st_size)
    return (total + 1023) // 1024


def write_control(tree: Path, version: str, arch: str, depends: list[str]) -> str:
    debian = tree / "DEBIAN"
    debian.mkdir()
    control = (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {installed_size_kib(tree)}\n"
        f"Depends: {', '.join(depends)}\n"
        "Section: net\n"
        "Priority: optional\n"
        f"Description: {SUMMARY}\n{DESCRIPTION}\n"
    )
    (debian / "control").write_text(control)
    sums = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink() and debian not in path.parents:
            digest = hashlib.md5(path.read_bytes()).hexdigest()  # what dpkg's md5sums holds
            sums.append(f"{digest}  {path.relative_to(tree)}\n")
    (debian / "md5sums").write_text("".join(sums))
    for name in ("control", "md5sums"):
        (debian / name).chmod(0o644)
    debian.chmod(0o755)
    return control


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the UA Console .deb")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the .deb goes")
    parser.add_argument(
        "--bundle", type=Path, help="a bundle already built with UACONSOLE_SYSTEM_LIBS=1"
    )
    parser.add_argument(
        "-Z", "--compression", default="xz", choices=("xz", "gzip", "zstd"),
        help="dpkg-deb's compression (default xz: smallest, readable by every dpkg)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    dpkg_deb = need("dpkg-deb", "dpkg")
    need("ldd", "libc-bin")
    need("objdump", "binutils")
    began = time.monotonic()
    version = project_version()
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    icon_dir = ROOT / "build" / "icons"
    icons.write_icons(icon_dir)
    bundle = args.bundle or build_bundle(ROOT / "build" / "deb-bundle", icon_dir)
    built = time.monotonic()
    tree = ROOT / "build" / "deb" / f"{PACKAGE}_{version}_{arch}"
    stage(bundle, tree, icon_dir)
    try:
        depends, _ = debdeps.depends(tree / "opt" / PACKAGE)
    except debdeps.MissingPackage as error:
        sys.exit(f"build_deb: {error}")
    write_control(tree, version, arch, depends)
    args.out.mkdir(parents=True, exist_ok=True)
    deb = args.out / f"{PACKAGE}_{version}_{arch}.deb"
    env = dict(os.environ)
    env.setdefault("SOURCE_DATE_EPOCH", str(int(os.stat(ROOT / "pyproject.toml").st_mtime)))
    subprocess.run(
        [dpkg_deb, "--root-owner-group", f"-Z{args.compression}", "--build", str(tree), str(deb)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    done = time.monotonic()
    bundle_mib = (
        sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
        / 2**20
    )
    print(
        f"{deb}: {deb.stat().st_size / 2**20:.1f} MiB ({args.compression}); bundle "
        f"{bundle_mib:.1f} MiB; {len(depends)} Depends; bundle built in {built - began:.0f} s, "
        f"package in {done - built:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
