"""The .deb of ``make package``: built here (or the one named by ``UACONSOLE_DEB``), unpacked with
``dpkg -x`` into a scratch folder; its files, its control data, and its bundled ``uaconsole``
running ``--version`` and ``--self-test`` offscreen. Installed into and removed from a scratch
root with ``dpkg --root`` to show that removal leaves nothing behind.

Skipped (failed under UACONSOLE_REQUIRE_TOOLS=1) without dpkg-deb, objdump or PyInstaller.
Building takes about a minute on two cores (PyInstaller ~25 s, xz ~30 s).
"""

import configparser
import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, missing

BUILD_DEB = PROJECT_ROOT / "packaging" / "linux" / "build_deb.py"
sys.path.insert(0, str(PROJECT_ROOT / "packaging" / "linux"))
import debdeps  # noqa: E402

#: System libraries Qt needs that the brief and any Qt desktop program need from Debian.
REQUIRED_DEPENDS = {
    "libegl1", "libgl1", "libxkbcommon0", "libxkbcommon-x11-0", "libfontconfig1",
    "libfreetype6", "libdbus-1-3", "libglib2.0-0", "libxcb-cursor0", "libxcb-icccm4",
    "libxcb-keysyms1", "libx11-xcb1", "libwayland-client0", "libwayland-cursor0", "libssl3",
    "libsqlite3-0",
}  # fmt: skip


def need(tool: str, package: str) -> None:
    """Skip (fail under UACONSOLE_REQUIRE_TOOLS=1) without ``tool``."""
    if shutil.which(tool) is None:
        missing(f"{tool} is not installed (Debian: apt-get install {package})")


def version() -> str:
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb: UACONSOLE_DEB if set (built earlier, e.g. by `make package` in .ci/run), else
    built now into a scratch folder."""
    given = os.environ.get("UACONSOLE_DEB")
    need("dpkg-deb", "dpkg")
    if given:
        path = Path(given)
        assert path.is_file(), f"UACONSOLE_DEB={given} is not a file"
        return path
    need("objdump", "binutils")
    need("ldd", "libc-bin")
    if importlib.util.find_spec("PyInstaller") is None:
        missing("PyInstaller is not installed (.venv/bin/pip install -e '.[package]')")
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        [sys.executable, str(BUILD_DEB), "--out", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    built = list(out.glob("uaconsole_*.deb"))
    assert len(built) == 1, built
    return built[0]


@pytest.fixture(scope="module")
def unpacked(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def bundle_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        PATH="/usr/bin:/bin",  # not the venv's: the bundle must carry its own Python
    )
    return env


def run_bundled(executable: Path, *args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(executable), *args],
        cwd=home,
        env=bundle_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_file_layout(unpacked: Path) -> None:
    opt = unpacked / "opt" / "uaconsole"
    executable = opt / "uaconsole"
    assert executable.is_file() and os.access(executable, os.X_OK)
    launcher = unpacked / "usr" / "bin" / "uaconsole"
    assert launcher.is_symlink() and os.readlink(launcher) == "/opt/uaconsole/uaconsole"
    internal = opt / "_internal"
    # Every file of resources/ but its Python files.
    source = PROJECT_ROOT / "resources"
    wanted = {
        p.relative_to(source)
        for p in source.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert wanted, "resources/ holds no files"
    for relative in wanted:
        assert (internal / "resources" / relative).is_file(), f"resources/{relative} missing"
    # Qt: the platforms a desktop and the self-test need; no WebEngine, QML or 3D.
    plugins = internal / "PySide6" / "Qt" / "plugins"
    for name in ("libqoffscreen.so", "libqxcb.so", "libqwayland.so"):
        assert (plugins / "platforms" / name).is_file(), name
    assert (plugins / "iconengines" / "libqsvgicon.so").is_file()
    names = {p.name for p in internal.rglob("*")}
    for unwanted in ("libQt6WebEngineCore.so.6", "libQt6Qml.so.6", "libQt6Quick.so.6",
                     "libQt63DCore.so.6", "QtWebEngineCore.abi3.so", "tkinter"):  # fmt: skip
        assert unwanted not in names, unwanted
    # The system's libraries are Debian's, not copies.
    for system in ("libX11.so.6", "libfontconfig.so.1", "libssl.so.3", "libglib-2.0.so.0"):
        assert system not in names, f"{system} is bundled: Depends should provide it"
    # The desktop entry and icons.
    desktop = unpacked / "usr" / "share" / "applications" / "uaconsole.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(desktop)
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"] == "uaconsole" and section["Icon"] == "uaconsole"
    assert section["Terminal"] == "false" and section["Categories"].endswith(";")
    hicolor = unpacked / "usr" / "share" / "icons" / "hicolor"
    assert (hicolor / "scalable" / "apps" / "uaconsole.svg").is_file()
    for size in (16, 32, 48, 128, 256):
        png = hicolor / f"{size}x{size}" / "apps" / "uaconsole.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        width, height = (
            int.from_bytes(png.read_bytes()[16:20]),
            int.from_bytes(png.read_bytes()[20:24]),
        )
        assert (width, height) == (size, size)
    assert (unpacked / "usr" / "share" / "doc" / "uaconsole" / "copyright").is_file()
    # Nothing anywhere else (no /etc, no /var: removal has nothing to leave behind).
    assert sorted(p.name for p in unpacked.iterdir()) == ["opt", "usr"]


def test_control_data(deb: Path, unpacked: Path, tmp_path: Path) -> None:
    def field(name: str) -> str:
        return subprocess.run(
            ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
        ).stdout.strip()

    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert field("Package") == "uaconsole"
    assert field("Version") == version()
    assert field("Architecture") == arch
    assert int(field("Installed-Size")) > 50_000  # KiB
    depends = [d.strip() for d in field("Depends").split(",")]
    names = {re.split(r"[ (]", d, maxsplit=1)[0] for d in depends}
    assert names >= REQUIRED_DEPENDS, REQUIRED_DEPENDS - names
    assert any(re.fullmatch(r"libc6 \(>= 2\.\d+\)", d) for d in depends), depends
    # No maintainer scripts: only control and md5sums.
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    assert sorted(p.name for p in control.iterdir()) == ["control", "md5sums"]
    # md5sums matches the files.
    sums = (control / "md5sums").read_text().splitlines()
    assert len(sums) > 100
    for line in sums:
        digest, relative = line.split("  ", 1)
        assert hashlib.md5((unpacked / relative).read_bytes()).hexdigest() == digest, relative


def test_depends_cover_every_library_the_bundle_loads(deb: Path, unpacked: Path) -> None:
    """Each library a bundled program or plugin names and the bundle lacks comes from a package
    in Depends (found with dpkg -S here, or debdeps's table where not installed)."""
    listed = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True, check=True
    ).stdout
    names = {re.split(r"[ (]", d.strip(), maxsplit=1)[0] for d in listed.split(",")}
    bundle = unpacked / "opt" / "uaconsole"
    needed = debdeps.needed_libraries(debdeps.elf_files(bundle), bundle)
    assert "libX11.so.6" in needed and "libc.so.6" in needed
    packages = debdeps.packages_for(needed)
    uncovered = {soname: pkg for soname, pkg in packages.items() if pkg not in names}
    assert not uncovered


def test_bundled_version(unpacked: Path, tmp_path: Path) -> None:
    result = run_bundled(unpacked / "opt" / "uaconsole" / "uaconsole", "--version", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"uaconsole {version()}"


def test_bundled_self_test_offscreen(unpacked: Path, tmp_path: Path) -> None:
    began = time.monotonic()
    result = run_bundled(unpacked / "opt" / "uaconsole" / "uaconsole", "--self-test", home=tmp_path)
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if re.match(r"^(ok  |FAIL|skip) ", line)]
    assert len(lines) == 9 and all(line.startswith("ok   ") for line in lines), result.stdout
    assert "ok   start Qt offscreen and load the console" in result.stdout
    assert re.search(r"platforms: .*offscreen.*wayland.*xcb", result.stdout), result.stdout
    assert "self-test passed: 9 steps" in result.stdout
    assert elapsed < 20, f"the bundled self-test took {elapsed:.1f} s"


def test_bundled_program_runs_through_a_symlink(unpacked: Path, tmp_path: Path) -> None:
    """/usr/bin/uaconsole is a symbolic link: the bundle must find its files from one."""
    link = tmp_path / "bin" / "uaconsole"
    link.parent.mkdir()
    link.symlink_to(unpacked / "opt" / "uaconsole" / "uaconsole")
    result = run_bundled(link, "--self-test", "--no-gui", home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test passed: 7 steps" in result.stdout


def test_install_and_remove_leave_nothing_behind(deb: Path, tmp_path: Path) -> None:
    """dpkg installs into and removes from a scratch root (its own database; dependencies not
    checked there): every file goes, nothing is left but dpkg's own records."""
    root = tmp_path / "root"
    admin = root / "var" / "lib" / "dpkg"
    for folder in ("info", "updates", "triggers"):
        (admin / folder).mkdir(parents=True)
    for name in ("status", "available"):
        (admin / name).touch()
    dpkg = ["dpkg", f"--root={root}", "--force-not-root", "--force-depends"]
    installed = subprocess.run([*dpkg, "-i", str(deb)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (root / "opt" / "uaconsole" / "uaconsole").is_file()
    assert os.readlink(root / "usr" / "bin" / "uaconsole") == "/opt/uaconsole/uaconsole"
    assert (root / "usr" / "share" / "applications" / "uaconsole.desktop").is_file()
    listed = subprocess.run(
        [*dpkg, "-L", "uaconsole"], capture_output=True, text=True, check=True
    ).stdout
    assert "/opt/uaconsole/uaconsole" in listed.splitlines()
    removed = subprocess.run([*dpkg, "--purge", "uaconsole"], capture_output=True, text=True)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    left = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not str(p.relative_to(root)).startswith("var")
    )
    assert left == [], left


@contextlib.contextmanager
def display_server(kind: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Xvfb or a headless Weston, on this machine only (a Unix socket, no TCP); the variables
    that point Qt at it. Stopped (by its own pid) when the block ends."""
    log = (tmp_path / f"{kind}.log").open("w")
    if kind == "x11":
        binary = shutil.which("Xvfb")
        if binary is None:
            missing("Xvfb is not installed (Debian: apt-get install xvfb)")
        read_fd, write_fd = os.pipe()
        server = subprocess.Popen(
            [binary, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten",
             "tcp"],
            pass_fds=(write_fd,), stdout=log, stderr=log,
        )  # fmt: skip
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()  # Xvfb writes it once it accepts clients
        env = {"DISPLAY": f":{number}", "QT_QPA_PLATFORM": "xcb"}
    else:
        binary = shutil.which("weston")
        if binary is None:
            missing("weston is not installed (Debian: apt-get install weston)")
        runtime = tmp_path / "xdg-runtime"
        runtime.mkdir(mode=0o700)
        server = subprocess.Popen(
            [binary, "--backend=headless-backend.so", "--socket=wayland-uaconsole",
             "--idle-time=0"],
            env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)), stdout=log, stderr=log,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not (runtime / "wayland-uaconsole").exists():
            assert server.poll() is None and time.monotonic() < deadline, (
                f"weston did not start: {(tmp_path / 'wayland.log').read_text()[-2000:]}"
            )
            time.sleep(0.05)
        env = {
            "XDG_RUNTIME_DIR": str(runtime),
            "WAYLAND_DISPLAY": "wayland-uaconsole",
            "QT_QPA_PLATFORM": "wayland",
        }
    try:
        yield env
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.parametrize("kind", ["x11", "wayland"])
def test_bundled_window_opens_on_a_display(unpacked: Path, tmp_path: Path, kind: str) -> None:
    """The bundled console opens its window on a real X server (Xvfb: the xcb plugin and the
    libraries of Depends) and on a Wayland compositor (Weston, headless), then closes."""
    home = tmp_path / "home"
    home.mkdir()
    with display_server(kind, tmp_path) as display:
        env = bundle_env(home)
        env.update(display, UACONSOLE_REPORT_SHOWN="exit")
        result = subprocess.run(
            [str(unpacked / "opt" / "uaconsole" / "uaconsole"), "--listen", "udp:127.0.0.1:0",
             "--no-mi", "--no-db"],
            cwd=home, env=env, capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    platform = "xcb" if kind == "x11" else "wayland"
    assert re.search(rf"window shown \d+\.\d+ s after launch \({platform}\)", result.stderr), (
        result.stderr
    )
