"""SIP, SIPS and TEL URIs (RFC 3261 section 19.1, RFC 3966), and other schemes kept opaque.

Policy for RFC 5118 section 4.10 (an IPv6 reference written with three colons, such as
``[2001:db8:::192.0.2.1]``): the RFC asks implementations to tolerate both forms, so we accept it
and keep the text as written; only the validity check reads it as ``::``.
"""

import functools
import ipaddress
import re
from dataclasses import dataclass, field, replace
from urllib.parse import unquote as pct_unquote

from .errors import ParseError
from .grammar import (
    HOSTNAME,
    PARSED_TEXTS,
    SIMPLE_SIP_URI,
    format_params,
    parse_params,
    simple_params,
)

_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
_PASSWORD_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*")
_HOSTNAME_RE = re.compile(HOSTNAME)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#.\-()pPwW]+")
_OPAQUE_RE = re.compile(r"[^\s<>\"]+")
SIMPLE_SIP_URI_RE = re.compile(SIMPLE_SIP_URI)


def parse_host(text: str, what: str) -> str:
    """Validate a host (name, IPv4 address or bracketed IPv6 reference); return it as written."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise ParseError(f"unterminated IPv6 reference in {what}")
        inner = text[1:-1]
        try:
            ipaddress.IPv6Address(inner.replace(":::", "::"))
        except ValueError:
            raise ParseError(f"bad IPv6 reference {text!r} in {what}") from None
        return text
    if not _HOSTNAME_RE.fullmatch(text):
        raise ParseError(f"bad host {text!r} in {what}")
    return text


def split_host_port(text: str, what: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 in brackets) and validate both."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference in {what}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ParseError(f"junk after IPv6 reference in {what}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii() or int(port_text) > 65535:
            raise ParseError(f"bad port {port_text!r} in {what}")
        port = int(port_text)
    return parse_host(host, what), port


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI. ``user`` and parameters are kept escaped, as written."""

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    password: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    #: The raw ``?header=value&...`` part, without the ``?``.
    headers: str | None = None

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(format_params(self.params))
        if self.headers is not None:
            out.append("?" + self.headers)
        return "".join(out)

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def host_address(self) -> str:
        """The host without IPv6 brackets, for socket calls."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def with_params(self, **params: str | None) -> "SipUri":
        """A copy with parameters added or replaced."""
        return replace(self, params={**self.params, **params})

    def without_params(self, *names: str) -> "SipUri":
        """A copy with the named parameters removed."""
        return replace(self, params={k: v for k, v in self.params.items() if k not in names})

    def comparable(self) -> tuple[object, ...]:
        """A key for RFC 3261 section 19.1.4 comparison (escapes undone, host case folded)."""
        user = pct_unquote(self.user) if self.user is not None else None
        significant = {
            k: (pct_unquote(v).lower() if v is not None else None)
            for k, v in self.params.items()
            if k in ("user", "ttl", "method", "maddr", "transport")
        }
        return (self.scheme, user, self.host.lower(), self.port, tuple(sorted(significant.items())))


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): a number and parameters."""

    number: str
    params: dict[str, str | None] = field(default_factory=dict)

    scheme = "tel"

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme, kept opaque (``mailto:``, ``http:``, ``urn:`` ...)."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


def _parse_uri(text: str) -> Uri:
    """Parse a URI; raise ParseError if it is malformed."""
    m = SIMPLE_SIP_URI_RE.fullmatch(text)
    if m is not None:
        scheme, user, host, port, params = m.groups()
        port_number = None if port is None else int(port)
        return SipUri(host, user, port_number, scheme, None, simple_params(params))
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise ParseError(f"not a URI: {text!r}")
    lowered = scheme.lower()
    if lowered in ("sip", "sips"):
        return _parse_sip_uri(lowered, rest, text)
    if lowered == "tel":
        number, _, params = rest.partition(";")
        if not _TEL_NUMBER_RE.fullmatch(number):
            raise ParseError(f"bad tel URI {text!r}")
        return TelUri(number, parse_params(params, "tel URI"))
    if not _OPAQUE_RE.fullmatch(rest):
        raise ParseError(f"bad URI {text!r}")
    return AbsoluteUri(lowered, rest)


#: Parsed URIs are shared: SipUri, TelUri and AbsoluteUri are frozen, and nothing changes their
#: parameter dicts (``with_params`` and ``without_params`` make copies).
parse_uri = functools.lru_cache(maxsize=PARSED_TEXTS)(_parse_uri)


def _parse_sip_uri(scheme: str, rest: str, text: str) -> SipUri:
    # The user part may hold '?' and ';', but never an unescaped '@', nor can what follows it.
    at = rest.find("@")
    user = password = None
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if not _USER_RE.fullmatch(user):
            raise ParseError(f"bad user part in {text!r}")
        if colon:
            if not _PASSWORD_RE.fullmatch(pw):
                raise ParseError(f"bad password in {text!r}")
            password = pw
    rest, question, headers = rest.partition("?")
    hostport, _, params = rest.partition(";")
    host, port = split_host_port(hostport, "URI")
    if question and (not headers or any(c in headers for c in " \t")):
        raise ParseError(f"bad headers part in {text!r}")
    return SipUri(
        host=host,
        user=user,
        port=port,
        scheme=scheme,
        password=password,
        params=parse_params(params, "URI") if params else {},
        headers=headers if question else None,
    )
