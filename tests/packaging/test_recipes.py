"""What can be checked here of the Windows and macOS recipes (they are built elsewhere): the
icons they use, the names that tie the spec, the Inno Setup script, the .dmg script and the CI
workflow together, and that the shell scripts parse.
"""

import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGING = PROJECT_ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))
import icons  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def icon_files(tmp_path_factory: pytest.TempPathFactory, qapp: object) -> dict[str, Path]:
    """Every icon, drawn on pytest-qt's QApplication."""
    return icons.write_icons(tmp_path_factory.mktemp("icons"))


def test_hicolor_pngs(icon_files: dict[str, Path]) -> None:
    for size in icons.HICOLOR_SIZES:
        assert png_size(icon_files[f"png{size}"].read_bytes()) == (size, size)


def test_windows_ico(icon_files: dict[str, Path]) -> None:
    data = icon_files["ico"].read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind, count) == (0, 1, len(icons.ICO_SIZES))
    for index, size in enumerate(icons.ICO_SIZES):
        width, height, _, _, planes, bits, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * index : 22 + 16 * index]
        )
        assert (width or 256, height or 256, planes, bits) == (size, size, 1, 32)
        assert png_size(data[offset : offset + length]) == (size, size)


def test_macos_icns(icon_files: dict[str, Path]) -> None:
    data = icon_files["icns"].read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    position, seen = 8, {}
    while position < len(data):
        kind, length = (
            data[position : position + 4],
            struct.unpack(">I", data[position + 4 : position + 8])[0],
        )
        seen[kind] = png_size(data[position + 8 : position + length])
        position += length
    assert position == len(data)
    assert seen == {kind: (size, size) for kind, size in icons.ICNS_TYPES}


def test_the_icon_is_drawn_not_blank(icon_files: dict[str, Path]) -> None:
    from PySide6.QtGui import QImage

    image = QImage(str(icon_files["png64"]))
    assert image.pixelColor(32, 32).alpha() == 255  # the blue tile
    assert image.pixelColor(0, 0).alpha() == 0  # transparent corner


def test_inno_setup_script_matches_the_spec_and_icons() -> None:
    iss = (PACKAGING / "windows" / "uaconsole.iss").read_text()
    spec = (PACKAGING / "uaconsole.spec").read_text()
    assert 'name="uaconsole"' in spec and 'name="uaconsole-cli"' in spec
    assert r'Source: "{#Root}\dist\uaconsole\*"' in iss  # COLLECT's folder
    assert r"SetupIconFile={#Root}\build\icons\uaconsole.ico" in iss  # icons.py's output
    assert '#define AppExe "uaconsole.exe"' in iss
    assert re.search(r"^AppId=\{\{[0-9A-F-]{36}\}$", iss, re.M)
    assert "OutputBaseFilename=uaconsole-{#AppVersion}-windows-x64-setup" in iss


def test_workflow_runs_what_exists() -> None:
    workflow = (PROJECT_ROOT / ".github" / "workflows" / "build.yml").read_text()
    for os_name in ("windows-2022", "macos-14", "macos-13"):
        assert f"os: {os_name}" in workflow
    for path in re.findall(r"packaging[/\\][\w/\\.-]+\.(?:iss|sh|py|spec)", workflow):
        assert (PROJECT_ROOT / path.replace("\\", "/")).is_file(), path
    assert "uaconsole-$env:VERSION-windows-x64-setup.exe" in workflow
    assert "--self-test" in workflow
    assert "\t" not in workflow  # YAML forbids tabs for indentation


def test_dmg_script_uses_the_bundle_name_of_the_spec() -> None:
    script = (PACKAGING / "macos" / "build_dmg.sh").read_text()
    spec = (PACKAGING / "uaconsole.spec").read_text()
    assert 'APP_NAME = "UA Console"' in spec and 'name=f"{APP_NAME}.app"' in spec
    assert 'APP="dist/UA Console.app"' in script
    assert "Contents/MacOS/uaconsole" in script


@pytest.mark.parametrize(
    "script", ["packaging/macos/build_dmg.sh", "packaging/linux/check_install.sh"]
)
def test_shell_scripts_parse(script: str) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "-n", str(PROJECT_ROOT / script)], capture_output=True)
    assert result.returncode == 0, result.stderr
