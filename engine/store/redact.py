"""Redaction for exports: numbers and addresses replaced by stand-ins, the same one each time.

What goes: IPv4 and IPv6 addresses (replaced by documentation addresses, 192.0.2.x and
2001:db8::x), the user part of sip:, sips: and tel: URIs (a phone number by a number of the
same length, a name by ``userN``), and runs of five or more digits in display names. Host names,
ports, tags and branches stay, so the flow still reads. A SIP message keeps a correct
Content-Length after its body changed.
"""

import ipaddress
import re

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_URI_USER = re.compile(r"(?i)\b(sips?:|tel:)([^@;>?\s,\"]+)(?=@|;|>|\s|$|,|\")")
_DISPLAY = re.compile(r'"([^"]*)"(\s*<)')
_DIGITS = re.compile(r"\d{5,}")
_PHONE = re.compile(r"^\+?[\d\-.()]+$")
_CONTENT_LENGTH = re.compile(rb"(?im)^(content-length|l)([ \t]*:[ \t]*)\d+")


class Redactor:
    """Consistent stand-ins for the addresses and numbers of one export."""

    def __init__(self) -> None:
        self._ips: dict[str, str] = {}
        self._users: dict[str, str] = {}

    def ip(self, address: str) -> str:
        """The stand-in for an IP address (unchanged if ``address`` is not one)."""
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return address
        key = str(parsed)
        if key not in self._ips:
            n = 1 + sum(1 for k in self._ips if (":" in k) == (parsed.version == 6))
            if parsed.version == 4:
                net = ("192.0.2", "198.51.100", "203.0.113")[min((n - 1) // 254, 2)]
                self._ips[key] = f"{net}.{(n - 1) % 254 + 1}"
            else:
                self._ips[key] = f"2001:db8::{n:x}"
        return self._ips[key]

    def user(self, user: str) -> str:
        """The stand-in for a URI's user part."""
        if user not in self._users:
            n = len(self._users) + 1
            if _PHONE.match(user):
                digits = sum(c.isdigit() for c in user)
                number = str(n).zfill(max(digits, len(str(n))))
                self._users[user] = ("+" if user.startswith("+") else "") + number
            else:
                self._users[user] = f"user{n}"
        return self._users[user]

    def text(self, value: str) -> str:
        """``value`` with its addresses and numbers replaced."""
        if not value:
            return value
        value = _URI_USER.sub(lambda m: m.group(1) + self.user(m.group(2)), value)
        value = _IPV6.sub(lambda m: self._maybe_ip(m.group(0)), value)
        value = _IPV4.sub(lambda m: self._maybe_ip(m.group(0)), value)
        return _DISPLAY.sub(
            lambda m: (
                '"' + _DIGITS.sub(lambda d: "0" * len(d.group(0)), m.group(1)) + '"' + m.group(2)
            ),
            value,
        )

    def _maybe_ip(self, text: str) -> str:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return text
        return self.ip(text)

    def address(self, address: str) -> str:
        """``udp:1.2.3.4:5060`` with its IP replaced."""
        return self.text(address)

    def message(self, data: bytes) -> bytes:
        """A SIP message with its addresses and numbers replaced, Content-Length corrected."""
        text = data.decode("utf-8", "surrogateescape")
        head, sep, body = text.partition("\r\n\r\n")
        head, body = self.text(head), self.text(body)
        out_head = head.encode("utf-8", "surrogateescape")
        out_body = body.encode("utf-8", "surrogateescape")
        if sep:
            out_head = _CONTENT_LENGTH.sub(
                lambda m: m.group(1) + m.group(2) + str(len(out_body)).encode(), out_head
            )
        return out_head + sep.encode() + out_body


def redact_row(redactor: Redactor | None, row: dict, fields: tuple[str, ...]) -> dict:
    """A copy of ``row`` with ``fields`` (strings) redacted, when there is a redactor."""
    if redactor is None:
        return row
    out = dict(row)
    for name in fields:
        if isinstance(out.get(name), str):
            out[name] = redactor.text(out[name])
    if isinstance(out.get("data"), bytes):
        out["data"] = redactor.message(out["data"])
    return out
