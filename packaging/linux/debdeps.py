"""The Debian packages a bundle needs: every shared library its ELF files name as NEEDED that
the bundle does not carry, mapped to the package that installs it (as dpkg-shlibdeps would, so
the libraries those load come with their packages' own Depends).

- A library found on this machine: ``dpkg -S`` names its package.
- A library not installed here (the X11 and Wayland libraries of Qt's platform plugins, on a
  build machine without a desktop): :data:`KNOWN_PACKAGES` names it. A library in neither is an
  error that names it, so that a new dependency is never left out silently.

Also: the newest ``GLIBC_2.N`` symbol version any ELF file asks for, for ``libc6 (>= 2.N)``.
"""

import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

#: soname -> Debian package (bookworm names), for the libraries Qt's plugins load that a build
#: machine without a desktop may lack. Found libraries are looked up with dpkg -S instead.
KNOWN_PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
}

#: Packages the console needs that no ELF file names: Qt loads the OpenGL/EGL libraries with
#: dlopen for its xcb and Wayland platforms, and needs at least one font.
EXTRA_DEPENDS = ("libegl1", "libgl1", "libopengl0", "fonts-dejavu-core | fonts-freefont-ttf")

_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(not found|\S+)")
_NEEDED = re.compile(r"^\s*NEEDED\s+(\S+)", re.MULTILINE)
_GLIBC = re.compile(r"GLIBC_2\.(\d+)\b")


class MissingPackage(Exception):
    """A library the bundle needs that no known package provides."""


def elf_files(root: Path) -> list[Path]:
    """Regular files (not symlinks) under ``root`` that are ELF objects."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as f:
            if f.read(4) == b"\x7fELF":
                found.append(path)
    return found


def direct_needs(path: Path) -> list[str]:
    """The sonames ``path`` names as NEEDED (``objdump -p``)."""
    result = subprocess.run(
        ["objdump", "-p", str(path)], capture_output=True, text=True, check=False, env=_env()
    )
    return _NEEDED.findall(result.stdout)


def needed_libraries(files: Iterable[Path], bundle: Path) -> dict[str, str | None]:
    """soname -> resolved path (None: not found here) of every library that one of ``files``
    names as NEEDED and ``bundle`` does not carry."""
    bundled = {p.name for p in bundle.rglob("*")}
    needed: dict[str, str | None] = {}
    for path in files:
        direct = set(direct_needs(path)) - bundled
        if not direct:
            continue
        result = subprocess.run(
            ["ldd", str(path)], capture_output=True, text=True, check=False, env=_env()
        )
        resolved = {}
        for line in result.stdout.splitlines():
            m = _LDD_LINE.match(line)
            if m:
                resolved[m.group(1)] = None if m.group(2) == "not found" else m.group(2)
        for name in direct:
            if needed.get(name) is None:
                needed[name] = resolved.get(name)
    return needed


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)  # the system's view, not the caller's
    env["LC_ALL"] = "C"
    return env


def owning_packages(paths: Iterable[str]) -> dict[str, str]:
    """Path -> the Debian package that installed it, for the paths some package owns."""
    candidates: dict[str, str] = {}
    for path in paths:
        for form in {path, os.path.realpath(path)}:
            candidates[form] = path
            # Debian 12 merged /lib into /usr/lib; dpkg knows each file under one of the two.
            if form.startswith("/usr/lib/"):
                candidates[form[4:]] = path
            elif form.startswith("/lib/"):
                candidates["/usr" + form] = path
    if not candidates:
        return {}
    result = subprocess.run(
        ["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True, check=False
    )
    owners: dict[str, str] = {}
    for line in result.stdout.splitlines():
        packages, _, path = line.partition(": ")
        if path in candidates and "," not in packages:
            owners[candidates[path]] = packages.split(":", 1)[0]
    return owners


def packages_for(needed: dict[str, str | None]) -> dict[str, str]:
    """soname -> package for every library in ``needed``; MissingPackage names the rest."""
    owners = owning_packages(p for p in needed.values() if p)
    result: dict[str, str] = {}
    unknown = []
    for name, path in sorted(needed.items()):
        package = owners.get(path) if path else None
        package = package or KNOWN_PACKAGES.get(name)
        if package is None and name.startswith("ld-linux"):
            package = "libc6"  # the dynamic loader (ldd shows it without "=>")
        if package is None:
            unknown.append(f"{name} ({path or 'not installed here'})")
        else:
            result[name] = package
    if unknown:
        raise MissingPackage(
            "no Debian package known for " + ", ".join(unknown) + ": install it on the build "
            "machine or add it to KNOWN_PACKAGES in packaging/linux/debdeps.py"
        )
    return result


def glibc_version(files: Iterable[Path]) -> str | None:
    """The newest ``2.N`` among the GLIBC symbol versions ``files`` require, or None."""
    newest = -1
    for path in files:
        result = subprocess.run(
            ["objdump", "-T", str(path)], capture_output=True, text=True, check=False
        )
        for m in _GLIBC.finditer(result.stdout):
            newest = max(newest, int(m.group(1)))
    return f"2.{newest}" if newest >= 0 else None


def depends(bundle: Path) -> tuple[list[str], dict[str, str]]:
    """The Depends entries of ``bundle`` (sorted, libc6 with its minimum version) and the
    soname -> package map they came from."""
    files = elf_files(bundle)
    sonames = packages_for(needed_libraries(files, bundle))
    packages = set(sonames.values()) | set(EXTRA_DEPENDS)
    entries = []
    glibc = glibc_version(files) if "libc6" in packages else None
    for package in sorted(packages):
        entries.append(f"libc6 (>= {glibc})" if package == "libc6" and glibc else package)
    return entries, sonames
