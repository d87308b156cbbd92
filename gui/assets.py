"""The files under ``resources/``: icons, SDP templates, the default configuration."""

import functools
import time
from importlib import resources
from importlib.resources.abc import Traversable

from PySide6.QtGui import QIcon

from engine.api.sdp import offer_sdp


def _root() -> Traversable:
    return resources.files("resources")


@functools.cache
def icon(name: str) -> QIcon:
    """An icon of ``resources/icons/NAME.svg`` (an empty icon if it is missing)."""
    path = _root() / "icons" / f"{name}.svg"
    if not path.is_file():
        return QIcon()
    with resources.as_file(path) as real:
        return QIcon(str(real))


def sdp_templates() -> dict[str, str]:
    """Template name -> text, from ``resources/sdp/*.sdp``, plus a generated offer."""
    templates: dict[str, str] = {}
    folder = _root() / "sdp"
    if folder.is_dir():
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sdp"):
                templates[entry.name[:-4]] = entry.read_text(encoding="utf-8")
    return templates


def fill_template(template: str, *, local_ip: str, rtp_port: int) -> str:
    """A template with ``{local_ip}``, ``{rtp_port}``, ``{session_id}``, ``{session_version}``
    filled in, and CRLF line ends (as SDP is sent)."""
    session_id = int(time.time())
    values = {
        "local_ip": local_ip,
        "rtp_port": rtp_port,
        "session_id": session_id,
        "session_version": session_id,
    }
    text = template
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return "".join(line + "\r\n" for line in text.strip().splitlines())


def generated_offer(local_ip: str, rtp_port: int) -> str:
    """An offer written by engine.api.sdp.offer_sdp (PCMU, PCMA, telephone-event)."""
    return offer_sdp(address=local_ip, rtp_port=rtp_port, session_id=int(time.time()))


def default_config_text() -> str:
    """The commented default configuration written on first start."""
    path = _root() / "default.toml"
    return path.read_text(encoding="utf-8") if path.is_file() else ""
