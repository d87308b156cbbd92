"""Checks the forms run as the user types: each returns None, or what is wrong in words."""

import re

_SIP_URI_RE = re.compile(
    r"sips?:(?:[^@\s<>\"]+@)?(?:[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::\d{1,5})?(?:;[^\s?<>\"]*)?(?:\?[^\s<>\"]*)?",
    re.IGNORECASE,
)
_TEL_URI_RE = re.compile(r"tel:\+?[0-9A-Fa-f\-.()*#]+(?:;[^\s<>\"]*)?", re.IGNORECASE)
_MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+/[A-Za-z0-9\-.!%*_+`'~]+(?:\s*;\s*[^\r\n]*)?")
_FLAGS_RE = re.compile(r"(?:t\d*|[ardhbn])*")
_REASON_BAD = re.compile(r"[\r\n\x00]")


def uri_problem(text: str, *, required: bool = True, what: str = "URI") -> str | None:
    """A SIP, SIPS or tel URI (``<>`` around it allowed)."""
    value = text.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    if not value:
        return f"the {what} is needed" if required else None
    if not value.lower().startswith(("sip:", "sips:", "tel:")):
        return f"the {what} must begin with sip:, sips: or tel: (e.g. sip:bob@127.0.0.1)"
    pattern = _TEL_URI_RE if value.lower().startswith("tel:") else _SIP_URI_RE
    if not pattern.fullmatch(value):
        if " " in value:
            return f"the {what} must not contain spaces"
        if value.endswith(("@", ":")):
            return f"the {what} lacks a host after {value[-1]!r}"
        return f"{value!r} is not a valid {what} (e.g. sip:bob@example.com:5060)"
    if not value.lower().startswith("tel:"):
        hostport = re.split(r"[;?]", value.split(":", 1)[1].rsplit("@", 1)[-1])[0]
        port = re.search(r":(\d+)$", hostport)
        if port and not 0 < int(port.group(1)) < 65536:
            return f"port {port.group(1)} is out of range (1-65535)"
    return None


def sip_uri_problem(text: str, *, required: bool = True, what: str = "URI") -> str | None:
    """A SIP or SIPS URI (where a tel URI cannot be sent to, e.g. the outbound proxy)."""
    problem = uri_problem(text, required=required, what=what)
    if problem:
        return problem
    value = text.strip().strip("<>").lower()
    if value.startswith("tel:"):
        return f"the {what} must be a sip: or sips: URI"
    return None


def display_name_problem(text: str) -> str | None:
    """A display name as the API passes it (``name,URI``): no comma, quote or line break."""
    if any(c in text for c in ',"\r\n\x00'):
        return "a display name cannot hold a comma, a double quote or a line break"
    return None


def code_problem(text: str, low: int = 100, high: int = 699) -> str | None:
    """A status code between ``low`` and ``high``."""
    value = text.strip()
    if not value.isdigit() or len(value) != 3:
        return f"the status code is three digits, {low} to {high}"
    if not low <= int(value) <= high:
        return f"the status code must be from {low} to {high}"
    return None


def reason_problem(text: str) -> str | None:
    """A reason phrase: one line."""
    if _REASON_BAD.search(text):
        return "the reason must be one line"
    return None


def media_type_problem(text: str, *, required: bool = False) -> str | None:
    """A media type such as ``application/sdp`` (parameters allowed)."""
    value = text.strip()
    if not value:
        return "the content type is needed with a body" if required else None
    if not _MEDIA_TYPE_RE.fullmatch(value):
        return f"{value!r} is not a media type (e.g. application/sdp, text/plain)"
    return None


def flags_problem(text: str) -> str | None:
    """Session flags: ``t<N>``, a, r, d, h, b, n."""
    value = text.replace(" ", "")
    if not _FLAGS_RE.fullmatch(value):
        bad = sorted({c for c in re.sub(r"t\d*", "", value) if c not in "ardhbn"})
        return f"unknown flag letter(s) {''.join(bad)!r}; known: t<N>, a, r, d, h, b, n"
    return None


def sdp_problem(text: str) -> str | None:
    """A rough check of an SDP body: v=0 first, then o=, s=, and ``x=`` lines."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    if lines[0] != "v=0":
        return "an SDP begins with the line v=0"
    for number, line in enumerate(lines, 1):
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            return f"SDP line {number} is not 'x=value': {line[:40]!r}"
    if not any(line.startswith("o=") for line in lines):
        return "an SDP needs an o= line"
    return None
