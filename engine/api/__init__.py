"""The engine's face: the Engine, its immutable data types, configuration and SDP helpers.

The console and other programs use this package, never the layers below it directly.
"""

from engine.ua.errors import CommandError
from engine.ua.events import EventType, Origin, SessionEvent, SessionInfo, SessionState

from .config import EngineConfig
from .engine import Engine, MessageRecord
from .streams import Gap, Reader

__all__ = [
    "CommandError",
    "Engine",
    "EngineConfig",
    "EventType",
    "Gap",
    "MessageRecord",
    "Origin",
    "Reader",
    "SessionEvent",
    "SessionInfo",
    "SessionState",
]
