"""Errors of the session commands, carrying the code and message OpenSIPS answers with."""

from engine.sip import LocalProtocolError


class CommandError(LocalProtocolError):
    """A session command that cannot be carried out.

    ``code`` and ``message`` are what OpenSIPS 3.4 answers in the same situation (MI-API.md
    section 2); ``detail`` says precisely why, for the JSON-RPC error's ``data``.
    """

    def __init__(self, code: int, message: str, detail: str) -> None:
        super().__init__(f"{message}: {detail}")
        self.code = code
        self.message = message
        self.detail = detail


def reply_failed(detail: str) -> CommandError:
    """``ua_session_reply`` could not send."""
    return CommandError(500, "Failed to send reply", detail)


def request_failed(detail: str) -> CommandError:
    """``ua_session_update`` could not send."""
    return CommandError(500, "Failed to send sequential request", detail)


def terminate_failed(detail: str) -> CommandError:
    """``ua_session_terminate`` found nothing to end."""
    return CommandError(500, "Failed to terminate session", detail)


def start_failed(detail: str) -> CommandError:
    """``ua_session_client_start`` could not start a call."""
    return CommandError(500, "Failed to initialize session", detail)
