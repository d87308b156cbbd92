"""The engine's face: the Engine, its immutable data types, configuration and SDP helpers.

The console and other programs use this package, never the layers below it directly.
"""

from engine.ua.errors import CommandError
from engine.ua.events import EventType, Origin, SessionEvent, SessionInfo, SessionState
from engine.ua.registration import (
    Account,
    RegistrationEvent,
    RegistrationInfo,
    RegistrationState,
)

from .config import EngineConfig
from .engine import Engine, MessageRecord
from .streams import Gap, Reader

__all__ = [
    "Account",
    "CommandError",
    "Engine",
    "EngineConfig",
    "EventType",
    "Gap",
    "MessageRecord",
    "Origin",
    "Reader",
    "RegistrationEvent",
    "RegistrationInfo",
    "RegistrationState",
    "SessionEvent",
    "SessionInfo",
    "SessionState",
]
