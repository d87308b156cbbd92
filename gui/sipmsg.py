"""Just enough reading of a SIP message for display: start line, headers, body.

The engine has parsed and checked every message already; the console only needs to show them
(the ladder, the headers tab, the SDP tab) and to tie them to a session by Call-ID. So this is
a forgiving reader of text, not a parser: it never raises.
"""

#: Compact header forms (RFC 3261 section 7.3.3) and the full names we show.
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}


class SipText:
    """A SIP message split into its parts, for display. Headers are split on first use."""

    __slots__ = ("_head", "_headers", "_index", "body", "start_line")

    def __init__(self, start_line: str, head: str, body: str) -> None:
        self.start_line = start_line
        self._head = head
        self.body = body
        self._headers: tuple[tuple[str, str], ...] | None = None
        self._index: dict[str, str] | None = None

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """(name as written, value) in order, folded lines joined."""
        if self._headers is None:
            headers: list[list[str]] = []
            for line in self._head.split("\n"):
                line = line.rstrip("\r")
                if line[:1] in (" ", "\t") and headers:
                    headers[-1][1] += " " + line.strip()
                    continue
                name, colon, value = line.partition(":")
                if colon:
                    headers.append([name.strip(), value.strip()])
            self._headers = tuple((n, v) for n, v in headers)
        return self._headers

    @property
    def is_request(self) -> bool:
        """True for a request, False for a response."""
        return not self.start_line.startswith("SIP/")

    @property
    def method(self) -> str:
        """The request's method, or the CSeq method of a response."""
        if self.is_request:
            return self.start_line.split(" ", 1)[0]
        return self.cseq_method

    @property
    def status(self) -> int:
        """The status code of a response; 0 for a request."""
        if self.is_request:
            return 0
        parts = self.start_line.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    @property
    def reason(self) -> str:
        """The reason phrase of a response; empty for a request."""
        if self.is_request:
            return ""
        parts = self.start_line.split(" ", 2)
        return parts[2] if len(parts) > 2 else ""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case, compact forms too)."""
        if self._index is None:
            index: dict[str, str] = {}
            for written, value in self.headers:
                low = written.lower()
                index.setdefault(COMPACT.get(low, low), value)
            self._index = index
        return self._index.get(name.lower())

    @property
    def call_id(self) -> str:
        """The Call-ID, or empty."""
        return (self.header("call-id") or "").strip()

    @property
    def cseq_method(self) -> str:
        """The method of the CSeq header, or empty."""
        parts = (self.header("cseq") or "").split()
        return parts[1].upper() if len(parts) > 1 else ""

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, or empty."""
        value = self.header("content-type") or ""
        return value.split(";", 1)[0].strip().lower()

    @property
    def has_sdp(self) -> bool:
        """True when the body is an SDP."""
        return bool(self.body.strip()) and self.content_type == "application/sdp"

    @property
    def summary(self) -> str:
        """What the ladder writes on the arrow: the method, or the status and reason."""
        if self.is_request:
            text = self.method
            if text in ("INVITE", "UPDATE") and ";tag=" in (self.header("to") or ""):
                text = "re-INVITE" if text == "INVITE" else text
        else:
            text = f"{self.status} {self.reason}".strip()
            if self.cseq_method and self.cseq_method != "INVITE":
                text += f" ({self.cseq_method})"
        if self.has_sdp:
            text += " + SDP"
        elif self.body.strip():
            text += f" + {self.content_type or 'body'}"
        return text


def split_message(data: bytes | str) -> SipText:
    """Split a message; whatever it holds, something displayable comes back."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    head, separator, body = text.partition("\r\n\r\n")
    if not separator and "\n\n" in text:
        head, _, body = text.partition("\n\n")
    start, _, rest = head.partition("\n")
    return SipText(start.rstrip("\r"), rest, body)


def parse_header_lines(text: str) -> tuple[list[tuple[str, str]], str | None]:
    """Extra headers typed by a person: (name, value) pairs and the first problem, if any.

    One ``Name: value`` per line; empty lines are ignored. Names are tokens (RFC 3261 section
    25.1); the value must not be empty. Headers the engine owns may not be given.
    """
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon:
            return pairs, f"line {number}: a header is written 'Name: value'"
        if not name or not all(c.isalnum() or c in "-.!%*_+`'~" for c in name):
            return pairs, f"line {number}: {name!r} is not a header name"
        if not value.strip():
            return pairs, f"line {number}: {name} has no value"
        if name.lower() in OWNED_HEADERS:
            return pairs, f"line {number}: {name} is set by the engine and cannot be given"
        pairs.append((name, value.strip()))
    return pairs, None


#: Headers the engine writes itself; giving them as extra headers would break the dialog.
OWNED_HEADERS = frozenset(
    {"via", "v", "call-id", "i", "cseq", "from", "f", "to", "t", "content-length", "l"}
)


def header_block(pairs: list[tuple[str, str]]) -> str | None:
    """Pairs as the API's ``extra_headers``: each line ending in CRLF; None when empty."""
    if not pairs:
        return None
    return "".join(f"{name}: {value}\r\n" for name, value in pairs)
