"""Garbage collection that does not freeze the window.

The console keeps every message of every session it shows (a few hundred thousand objects at
200 calls/s), and the engine keeps its transactions for 32 s. CPython's cyclic collector scans
the older generations whole, and on that heap one collection of the middle generation took
about 400 ms in bench/gui_lag.py: a visible freeze.

So, once a second while sessions come and go, the objects that survived so far are moved out of
the collector's sight (``gc.freeze()``, which costs nothing: it links two lists), and young
collections only ever scan the last second's allocations. Cyclic garbage that was frozen is
reclaimed later, by a full collection run when the console has been quiet for a while (no
model update for QUIET seconds), when a pause is not felt.
"""

import gc
import time

from PySide6.QtCore import QObject, QTimer

from .hub import SessionHub

#: Seconds without a model update after which a full collection may run.
QUIET = 20.0
#: Young-generation threshold: small, so each young collection is short.
THRESHOLDS = (20_000, 20, 1_000_000)


class GcPolicy(QObject):
    """Freezes survivors while busy; collects fully when quiet."""

    def __init__(self, hub: SessionHub, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self._flushes = hub.flushes
        self._last_activity = time.monotonic()
        self._frozen_since_collect = False
        self.full_collections = 0
        gc.set_threshold(*THRESHOLDS)
        gc.freeze()
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.tick)
        self._timer.start()

    def tick(self) -> None:
        """Once a second."""
        now = time.monotonic()
        if self.hub.flushes != self._flushes:
            self._flushes = self.hub.flushes
            self._last_activity = now
            gc.freeze()
            self._frozen_since_collect = True
        elif self._frozen_since_collect and now - self._last_activity > QUIET:
            self.collect()

    def collect(self) -> None:
        """A full collection of everything, then freeze what survives."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._frozen_since_collect = False
        self.full_collections += 1

    def stop(self) -> None:
        """Stop and give the collector back its objects."""
        self._timer.stop()
        gc.unfreeze()
