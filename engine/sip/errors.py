"""The engine's exceptions: one root, split between our misuse and the peer's.

``LocalProtocolError`` means this program did something wrong (a bug, or a bad command from the
controller). ``RemoteProtocolError`` means the peer sent something wrong; its ``status_hint`` is the
SIP status a server should answer with, or None when the message must be dropped silently.
"""


class EngineError(Exception):
    """Root of every exception the engine raises on purpose."""


class LocalProtocolError(EngineError):
    """We were asked to do something the protocol does not allow."""


class RemoteProtocolError(EngineError):
    """The peer sent something the protocol does not allow."""

    def __init__(self, message: str, status_hint: int | None = 400) -> None:
        super().__init__(message)
        #: The status code to answer with, or None to drop the message.
        self.status_hint = status_hint


class ParseError(RemoteProtocolError):
    """Bytes that are not a well-formed SIP message (or header, URI...)."""
