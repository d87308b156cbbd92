"""The engine's garbage-collection policy (engine.api.gcpolicy), driven by a Qt timer.

The console keeps every message of every session it shows, besides the engine's own lingering
transactions: without the policy, one collection of the middle generation took about 400 ms in
bench/gui_lag.py, a visible freeze. Activity is the hub's count of model flushes.
"""

from PySide6.QtCore import QObject, QTimer

from engine.api.gcpolicy import GcPolicy as EnginePolicy

from .hub import SessionHub


class GcPolicy(QObject):
    """Freezes survivors while busy; collects fully when quiet (ticks once a second)."""

    def __init__(self, hub: SessionHub, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._policy = EnginePolicy(lambda: hub.flushes)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._policy.tick)
        self._timer.start()

    @property
    def full_collections(self) -> int:
        """Full collections run so far."""
        return self._policy.full_collections

    def stop(self) -> None:
        """Stop and give the collector back its objects."""
        self._timer.stop()
        self._policy.release()
