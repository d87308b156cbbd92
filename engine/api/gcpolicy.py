"""Garbage collection without long pauses, for a busy engine.

A busy engine holds many live objects: every transaction lingers 32 s to absorb retransmissions,
every session keeps its messages. CPython's cyclic collector scans the older generations whole,
and on that heap one collection took 0.4-0.6 s at 1200 calls/s (bench/cps.py): long enough for
the socket buffer to overflow and the peer to start retransmitting, which adds load.

So, once a second while there is traffic, the objects that survived so far are moved out of the
collector's sight (``gc.freeze()``: it links two lists, it costs nothing), and young collections
only ever scan the last second's allocations. Objects still die by reference counting as usual;
only cyclic garbage that was frozen waits for a full collection, run when the engine has been
quiet for a while. The console drives the same policy from a Qt timer (gui/gcpolicy.py).
"""

import asyncio
import gc
import time
from collections.abc import Callable

#: Young-generation threshold: small, so that each young collection is short.
THRESHOLDS = (20_000, 20, 1_000_000)
#: Seconds without activity after which a full collection may run.
QUIET = 20.0


class GcPolicy:
    """Freezes survivors while busy; collects fully when quiet. Call ``tick`` once a second."""

    def __init__(self, activity: Callable[[], int], quiet: float = QUIET) -> None:
        self._activity = activity
        self._quiet = quiet
        self._seen = activity()
        self._last_busy = time.monotonic()
        self._frozen_since_collect = False
        #: Full collections run so far.
        self.full_collections = 0
        gc.set_threshold(*THRESHOLDS)
        gc.freeze()

    def tick(self) -> None:
        """Freeze what survived the last second if there was traffic; collect when quiet."""
        now = time.monotonic()
        seen = self._activity()
        if seen != self._seen:
            self._seen = seen
            self._last_busy = now
            gc.freeze()
            self._frozen_since_collect = True
        elif self._frozen_since_collect and now - self._last_busy > self._quiet:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._frozen_since_collect = False
            self.full_collections += 1

    def release(self) -> None:
        """Give the collector back every frozen object (the policy is no longer used)."""
        gc.unfreeze()

    async def run(self, interval: float = 1.0) -> None:
        """Tick every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.tick()
