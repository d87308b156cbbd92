"""The application icon for each system, drawn from ``resources/icons/app.svg`` with Qt (offscreen).

    python packaging/icons.py [OUT_DIR]      # default build/icons

writes ``uaconsole.svg`` (a copy), ``png/NxN.png`` for the freedesktop hicolor sizes,
``uaconsole.ico`` (Windows: 16 to 256 px, PNG entries, readable since Windows Vista) and
``uaconsole.icns`` (macOS: 16 to 1024 px, PNG entries), so that no tool of those systems is
needed to make them.
"""

import os
import shutil
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "resources" / "icons" / "app.svg"
#: freedesktop hicolor sizes installed by the .deb.
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
#: icns entry types with PNG data and their sizes in pixels.
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
    (b"ic09", 512), (b"ic10", 1024), (b"ic11", 32), (b"ic12", 64), (b"ic13", 256),
    (b"ic14", 512),
)  # fmt: skip


def render_png(svg: Path, size: int) -> bytes:
    """``svg`` drawn at ``size`` x ``size`` pixels on a transparent background, as PNG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not an SVG image Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    assert _app is not None
    return bytes(data.data())


def ico(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico holding each PNG (size -> bytes)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, blobs = b"", b""
    for size in sizes:
        data = pngs[size]
        edge = 0 if size >= 256 else size  # 0 means 256
        entries += struct.pack("<BBBBHHII", edge, edge, 0, 0, 1, 32, len(data), offset)
        blobs += data
        offset += len(data)
    return header + entries + blobs


def icns(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns with PNG entries (size -> bytes; every size of ICNS_TYPES is needed)."""
    body = b""
    for kind, size in ICNS_TYPES:
        data = pngs[size]
        body += kind + struct.pack(">I", 8 + len(data)) + data
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_icons(out: Path, svg: Path = SOURCE) -> dict[str, Path]:
    """Every icon file under ``out``; name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = sorted(set(HICOLOR_SIZES) | set(ICO_SIZES) | {s for _, s in ICNS_TYPES})
    pngs = {size: render_png(svg, size) for size in sizes}
    written = {"svg": out / "uaconsole.svg", "ico": out / "uaconsole.ico"}
    shutil.copyfile(svg, written["svg"])
    (out / "png").mkdir(exist_ok=True)
    for size in HICOLOR_SIZES:
        path = out / "png" / f"{size}x{size}.png"
        path.write_bytes(pngs[size])
        written[f"png{size}"] = path
    written["ico"].write_bytes(ico({s: pngs[s] for s in ICO_SIZES}))
    written["icns"] = out / "uaconsole.icns"
    written["icns"].write_bytes(icns(pngs))
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "build" / "icons"
    written = write_icons(out)
    print(f"icons: {len(written)} files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
