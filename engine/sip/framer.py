"""Cut a TCP or TLS byte stream into SIP messages (RFC 3261 section 18.3).

Bytes arrive in arbitrary pieces; each whole message is handed out as one ``bytes`` frame for
:func:`parse_message`. Content-Length says where a body ends. A message without Content-Length
(only RFC 2543 peers send one on a stream) runs to the end of the stream, so it is handed out by
:meth:`StreamFramer.eof`. CRLFs between messages (RFC 5626 keep-alives) are skipped; each
run counts as one keep-alive.
"""

import re

from .errors import ParseError
from .grammar import parse_uint
from .message import DEFAULT_LIMITS, Limits

_CONTENT_LENGTH_RE = re.compile(
    rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.I | re.M
)


class StreamFramer:
    """Incremental framer. ``feed`` returns whole frames; ParseError means: close the stream."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        #: How many runs of CRLF (keep-alives) were skipped between messages.
        self.keepalives = 0

    @property
    def pending(self) -> int:
        """Bytes held that do not make a whole message yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every message now complete, in order."""
        self._buffer += data
        frames: list[bytes] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return frames
            frames.append(frame)

    def eof(self) -> bytes | None:
        """The stream ended: the bytes left over as a last frame, or None if only whitespace."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest if rest.strip() else None

    def _next_frame(self) -> bytes | None:
        buf = self._buffer
        skipped = 0
        while buf[skipped : skipped + 2] == b"\r\n":
            skipped += 2
        if skipped:
            self.keepalives += 1
            del buf[:skipped]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self._limits.max_message:
                raise ParseError("header block larger than the message size limit")
            return None
        head = bytes(buf[:end])
        values = {m.strip() for m in _CONTENT_LENGTH_RE.findall(head)}
        if not values:
            return None  # runs to the end of the stream
        if len(values) > 1:
            raise ParseError("conflicting Content-Length values")
        length = parse_uint(
            values.pop().decode("latin-1"), "Content-Length", self._limits.max_message
        )
        total = end + 4 + length
        if total > self._limits.max_message:
            raise ParseError(f"message of {total} bytes exceeds {self._limits.max_message}", 513)
        if len(buf) < total:
            return None
        frame = bytes(buf[:total])
        del buf[:total]
        return frame
