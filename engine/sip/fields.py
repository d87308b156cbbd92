"""Structured header values: name-addr (From, To, Contact, Route...), Via and CSeq."""

import functools
import re
from dataclasses import dataclass, field, replace

from .errors import ParseError
from .grammar import (
    HOSTNAME,
    PARSED_TEXTS,
    PORT,
    SIMPLE_PARAMS,
    TOKEN,
    format_params,
    is_token,
    parse_params,
    parse_uint,
    quote,
    simple_params,
    split_outside_quotes,
    unquote,
)
from .uri import SipUri, Uri, parse_uri, split_host_port

MAX_CSEQ = 2**32 - 1
_DISPLAY_TOKENS_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~ \t]*")
#: Common shapes, parsed in one match each; anything else takes the general path.
SIMPLE_NAME_ADDR = rf'(?:"([^"\\\r\n]*)" ?|({TOKEN}(?: {TOKEN})*) ?)?<([^<>"\s]+)>{SIMPLE_PARAMS}'
#: The shape of a well-formed name-addr, without looking into its URI: what the message parser
#: checks at once for From and To (the URI is parsed on first use).
NAME_ADDR_SHAPE_RE = re.compile(
    rf'(?:"[^"\\\r\n]*" ?|{TOKEN}(?: {TOKEN})* ?)?<[^<>"\s]+>{SIMPLE_PARAMS}'
)
SIMPLE_VIA_RE = re.compile(rf"SIP/2\.0/([A-Za-z]+) ({HOSTNAME})(?::({PORT}))?{SIMPLE_PARAMS}")
SIMPLE_CSEQ_RE = re.compile(rf"(\d{{1,10}}) ({TOKEN})")
_SIMPLE_NAME_ADDR_RE = re.compile(SIMPLE_NAME_ADDR)
_VIA_RE = re.compile(r"\s*([^/\s]+)\s*/\s*([^/\s]+)\s*/\s*([^\s;/]+)\s+([^;]+?)\s*(?:;(.*))?", re.S)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """An address with optional display name and header parameters (From, To, Contact...).

    ``display`` is None when there is none; otherwise the unquoted text.
    """

    uri: Uri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter, or None."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> "NameAddr":
        """A copy carrying ``tag``."""
        return NameAddr(self.uri, self.display, {**self.params, "tag": tag})

    def __str__(self) -> str:
        if self.display is not None:
            shown = quote(self.display) + " " if self.display else ""
            return f"{shown}<{self.uri}>{format_params(self.params)}"
        return f"<{self.uri}>{format_params(self.params)}"


def _parse_name_addr(text: str, what: str = "address") -> NameAddr:
    """Parse ``["display"] <uri>;params`` or ``uri;params`` (addr-spec form)."""
    m = _SIMPLE_NAME_ADDR_RE.fullmatch(text)
    if m is not None:
        quoted, tokens, uri, params = m.groups()
        display = quoted if quoted is not None else (tokens or "")
        return NameAddr(parse_uri(uri), display, simple_params(params))
    text = text.strip()
    if not text:
        raise ParseError(f"empty {what}")
    if text[0] == '"':
        end = _closing_quote(text, what)
        display: str | None = unquote(text[: end + 1])
        rest = text[end + 1 :].lstrip()
        if not rest.startswith("<"):
            raise ParseError(f"quoted display name without <uri> in {what}")
    else:
        lt = text.find("<")
        if lt >= 0:
            shown = text[:lt].strip()
            if not _DISPLAY_TOKENS_RE.fullmatch(shown):
                raise ParseError(f"display name {shown!r} in {what} must be quoted")
            display = shown
            rest = text[lt:]
        else:
            display = None
            rest = text
    if rest.startswith("<"):
        gt = rest.find(">")
        if gt < 0:
            raise ParseError(f"unterminated <uri> in {what}")
        uri_text = rest[1:gt].strip()
        tail = rest[gt + 1 :].strip()
        if tail and not tail.startswith(";"):
            raise ParseError(f"junk after <uri> in {what}")
        params = tail[1:]
    else:
        # addr-spec form: the URI cannot carry parameters or headers; ';' starts header params.
        uri_text, _, params = rest.partition(";")
        uri_text = uri_text.strip()
        if "?" in uri_text or "," in uri_text or " " in uri_text:
            raise ParseError(f"{what} URI with special characters must be in <>")
    return NameAddr(parse_uri(uri_text), display, parse_params(params, what))


#: Parsed addresses are shared: NameAddr is frozen and nothing changes its parameter dict
#: (``with_tag`` makes a copy).
parse_name_addr = functools.lru_cache(maxsize=PARSED_TEXTS)(_parse_name_addr)


def _closing_quote(text: str, what: str) -> int:
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i
        i += 1
    raise ParseError(f"unterminated quoted string in {what}")


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;params``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter, or None (RFC 2543 peers)."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter, or None."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The ``rport`` value filled in by a server, or None (also when asked but empty)."""
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, or None."""
        return self.params.get("maddr")

    def with_params(self, **params: str | None) -> "Via":
        """A copy with parameters added or replaced."""
        return replace(self, params={**self.params, **params})

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    """Parse one Via value (not a comma-separated list)."""
    m = SIMPLE_VIA_RE.fullmatch(text)
    if m is not None:
        transport, host, port, params = m.groups()
        parsed = simple_params(params)
        if not parsed.get("rport"):
            return Via(transport.upper(), host, None if port is None else int(port), parsed)
    m = _VIA_RE.fullmatch(text)
    if m is None:
        raise ParseError(f"malformed Via {text.strip()!r}")
    name, version, transport, sent_by, params = m.groups()
    if not (is_token(name) and is_token(version) and is_token(transport)):
        raise ParseError(f"malformed Via protocol in {text.strip()!r}")
    host, port = split_host_port(sent_by.replace(" ", "").replace("\t", ""), "Via")
    parsed = parse_params(params, "Via") if params is not None else {}
    if params is not None and not parsed:
        raise ParseError("empty Via parameter")
    for key in ("received", "maddr"):
        if key in parsed and not parsed[key]:
            raise ParseError(f"empty Via {key}")
    if parsed.get("rport"):
        parse_uint(parsed["rport"] or "", "Via rport", 65535)
    return Via(transport.upper(), host, port, parsed, f"{name.upper()}/{version}")


def parse_vias(text: str) -> list[Via]:
    """Parse a Via header value holding one or more comma-separated values."""
    return [parse_via(part) for part in split_outside_quotes(text, ",")]


@dataclass(frozen=True, slots=True)
class CSeq:
    """The CSeq header: sequence number and method."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def _parse_cseq(text: str) -> CSeq:
    """Parse ``number method``; the number must fit in 32 bits."""
    m = SIMPLE_CSEQ_RE.fullmatch(text)
    if m is not None and int(m.group(1)) <= MAX_CSEQ:
        return CSeq(int(m.group(1)), m.group(2))
    number, _, method = text.strip().partition(" ")
    method = method.strip()
    if not is_token(method):
        raise ParseError(f"malformed CSeq {text.strip()!r}")
    return CSeq(parse_uint(number, "CSeq number", MAX_CSEQ), method)


#: "1 INVITE", "2 BYE"...: the same few values in every call.
parse_cseq = functools.lru_cache(maxsize=PARSED_TEXTS)(_parse_cseq)


def sip_uri_of(addr: NameAddr) -> SipUri | None:
    """The address's URI if it is a SIP or SIPS URI, else None."""
    return addr.uri if isinstance(addr.uri, SipUri) else None
