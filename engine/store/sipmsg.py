"""A quick look at a logged SIP message: the few header values the log indexes.

The transport has already framed the message and the engine has parsed it; the log only needs the
start line, Call-ID, CSeq, From and To. This scanner reads those from the header lines, tolerating
compact forms and odd case, and never raises: a message it cannot read is still logged, with the
fields it could not find left empty.
"""

import re
from dataclasses import dataclass

#: The indexed headers, in one pass (a folded header takes the slower line-by-line path).
_HEADER = re.compile(rb"\r\n(call-id|i|cseq|from|f|to|t)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_COMPACT = {b"i": b"call-id", b"f": b"from", b"t": b"to"}
_WANTED = frozenset({b"call-id", b"cseq", b"from", b"to"})


@dataclass(frozen=True, slots=True)
class Summary:
    """What the log keeps beside a message's bytes."""

    first_line: str
    #: The request's method, or None for a response.
    method: str | None
    #: The response's status, or 0 for a request.
    status: int
    reason: str
    #: The Request-URI of a request.
    ruri: str
    callid: str
    #: ``1 INVITE``.
    cseq: str
    cseq_method: str
    from_: str
    to: str

    @property
    def is_request(self) -> bool:
        return self.method is not None

    @property
    def to_has_tag(self) -> bool:
        """True when the To header carries a tag (the message is inside a dialog)."""
        return _has_tag(self.to)


def _has_tag(value: str) -> bool:
    # The tag parameter follows the URI, outside any <...>.
    rest = value.rsplit(">", 1)[-1] if "<" in value else value
    return any(p.strip().lower().startswith("tag=") for p in rest.split(";")[1:])


def summarise(data: bytes) -> Summary:
    """The start line and the indexed headers of ``data``; empty strings where absent."""
    head = data.split(b"\r\n\r\n", 1)[0]
    first = head.partition(b"\r\n")[0].decode("utf-8", "replace")
    method: str | None = None
    status = 0
    reason = ruri = ""
    if first.startswith("SIP/"):
        parts = first.split(" ", 2)
        if len(parts) >= 2 and parts[1].isdigit():
            status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
    else:
        parts = first.split(" ")
        method = parts[0]
        ruri = parts[1] if len(parts) > 1 else ""
    found: dict[bytes, bytes] = {}
    if b"\r\n " in head or b"\r\n\t" in head:
        _scan_lines(head.split(b"\r\n"), found)
    else:
        for name, value in _HEADER.findall(head):
            name = name.lower()
            name = _COMPACT.get(name, name)
            if name not in found:
                found[name] = value.rstrip()
    cseq = found.get(b"cseq", b"").decode("utf-8", "replace")
    cseq_parts = cseq.split()
    return Summary(
        first_line=first,
        method=method,
        status=status,
        reason=reason,
        ruri=ruri,
        callid=found.get(b"call-id", b"").decode("utf-8", "replace"),
        cseq=" ".join(cseq_parts),
        cseq_method=cseq_parts[1].upper() if len(cseq_parts) > 1 else "",
        from_=found.get(b"from", b"").decode("utf-8", "replace"),
        to=found.get(b"to", b"").decode("utf-8", "replace"),
    )


def _scan_lines(lines: list[bytes], found: dict[bytes, bytes]) -> None:
    """The indexed headers, line by line, joining folded continuation lines."""
    last: bytes | None = None
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the previous header
            if last is not None:
                found[last] += b" " + line.strip()
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            last = None
            continue
        name = name.strip().lower()
        name = _COMPACT.get(name, name)
        if name in _WANTED and name not in found:
            found[name] = value.strip()
            last = name
        else:
            last = None
