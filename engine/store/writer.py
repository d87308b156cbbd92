"""The event log writer: reads the engine's streams on the loop, writes batches in a thread.

```python
log = EventLog(path)
status = await log.start(engine)   # never raises for a bad file: see status.ok / status.error
...
await engine.stop()
await log.stop()                   # writes what is left, then closes the file
```

The asyncio side only drains the engine's two readers (a few microseconds per item) and hands
the batch to the writer's own worker thread; the loop never waits on SQLite. Each reader is a
bounded queue (``queue_size`` items): if the thread falls behind, the engine drops the oldest
items of that reader and the writer records a row in ``gaps`` saying how many. If the file fails
(corrupt, locked, read-only, disk full), the writer logs one line, stops reading, and the engine
goes on; :attr:`EventLog.status` says what happened, for the console to show.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from engine.api import RegistrationEvent
from engine.api.engine import MessageRecord
from engine.api.streams import Gap, Reader
from engine.ua.events import SessionEvent

from .retention import Retention
from .schema import StoreError
from .sink import Batch, Sink

log = logging.getLogger("uaconsole.store")

#: Seconds between batches: an event is in the file at most about this long after it happened.
BATCH_INTERVAL = 0.1


class EventSource(Protocol):
    """What the writer needs of the engine."""

    def events(self, maxsize: int = ...) -> Reader[SessionEvent]: ...

    def messages(self, maxsize: int = ...) -> Reader[MessageRecord]: ...


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """A snapshot of the writer's health, replaced (never changed) after every batch."""

    #: The file, or None when logging is off.
    path: str | None
    #: False once the file failed: nothing more is written.
    ok: bool = True
    #: Why logging stopped, in one line; None while all is well.
    error: str | None = None
    #: True between a successful start and stop (or a failure).
    running: bool = False
    #: Events and SIP messages written.
    rows_written: int = 0
    #: Events and SIP messages lost: dropped by a full queue, or in a batch that failed.
    rows_lost: int = 0
    #: Seconds from the oldest item of the last batch to its commit.
    lag: float = 0.0
    #: The largest ``lag`` so far.
    max_lag: float = 0.0
    #: Transactions committed.
    batches: int = 0
    #: Rows removed by retention.
    rows_pruned: int = 0

    @property
    def summary(self) -> str:
        """One line for a status bar or a log."""
        if self.path is None:
            return "event log off"
        if not self.ok:
            return f"event log off: {self.error}"
        lost = f", {self.rows_lost} lost" if self.rows_lost else ""
        return f"event log {self.path}: {self.rows_written} rows{lost}"


class EventLog:
    """Writes every event and SIP message of one engine to a SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        retention: Retention | None = None,
        interval: float = BATCH_INTERVAL,
        queue_size: int = 100_000,
        max_batch: int = 50_000,
        busy_timeout: float = 2.0,
        pragmas: dict[str, object] | None = None,
    ) -> None:
        self.path = Path(path)
        self.interval = interval
        self.queue_size = queue_size
        self.max_batch = max_batch
        self._sink = Sink(path, retention=retention, busy_timeout=busy_timeout, pragmas=pragmas)
        self._executor: ThreadPoolExecutor | None = None
        self._events: Reader[SessionEvent] | None = None
        self._messages: Reader[MessageRecord] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._listeners: list[Callable[[StoreStatus], None]] = []
        self.status = StoreStatus(str(self.path))

    def subscribe(self, listener: Callable[[StoreStatus], None]) -> None:
        """Call ``listener(status)`` on the loop after each change of :attr:`status`."""
        self._listeners.append(listener)

    async def start(self, engine: EventSource) -> StoreStatus:
        """Open the file and start writing; the status (``ok`` False, with ``error``, if the file
        cannot be used: the engine runs on without a log)."""
        loop = asyncio.get_running_loop()
        # Subscribe first: whatever happens while the file opens is kept.
        self._events = engine.events(self.queue_size)
        self._messages = engine.messages(self.queue_size)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="uaconsole-eventlog")
        self._wake = asyncio.Event()
        try:
            await loop.run_in_executor(self._executor, self._sink.open)
        except StoreError as error:
            self._fail(str(error), lost=0)
            self._executor.shutdown(wait=False)
            self._executor = None
            return self.status
        self._set(running=True)
        self._task = asyncio.create_task(self._run(), name="uaconsole-eventlog")
        return self.status

    async def stop(self) -> StoreStatus:
        """Write what is queued (call after ``engine.stop()`` to keep its last events), close."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._sink.close)
            self._executor.shutdown(wait=True)
            self._executor = None
        self._close_readers()
        self._set(running=False)
        return self.status

    # -- the loop side ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._executor is not None and self._wake is not None
        next_tick = loop.time()
        while True:
            batch = self._drain()
            if batch.events or batch.messages or batch.gaps or batch.registrations:
                lost = sum(g[2] for g in batch.gaps)
                try:
                    written = await loop.run_in_executor(self._executor, self._sink.write, batch)
                    pruned = await loop.run_in_executor(self._executor, self._sink.maybe_prune)
                except StoreError as error:
                    self._fail(str(error), lost=lost + len(batch))
                    return
                except Exception as error:  # a bug must not take the engine down
                    log.exception("event log writer failed")
                    self._fail(f"event log writer failed: {error!r}", lost=lost + len(batch))
                    return
                oldest = batch.oldest
                lag = max(0.0, time.time() - oldest) if oldest is not None else 0.0
                st = self.status
                self._set(
                    rows_written=st.rows_written + written,
                    rows_lost=st.rows_lost + lost,
                    lag=lag,
                    max_lag=max(st.max_lag, lag),
                    batches=st.batches + 1,
                    rows_pruned=st.rows_pruned + pruned,
                )
            if self._stopping and not self._pending():
                return
            if self._pending() >= self.max_batch:
                continue  # behind: the next batch at once
            next_tick = max(next_tick + self.interval, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), next_tick - loop.time())

    def _pending(self) -> int:
        return sum(len(r) for r in (self._events, self._messages) if r is not None)

    def _drain(self) -> Batch:
        batch = Batch()
        now = time.time()
        for reader, items, name in (
            (self._events, batch.events, "events"),
            (self._messages, batch.messages, "messages"),
        ):
            if reader is None:
                continue
            for _ in range(self.max_batch):
                item = reader.get_nowait()
                if item is None:
                    break
                if isinstance(item, Gap):
                    batch.gaps.append((now, name, item.lost, "writer queue full"))
                    log.warning("event log fell behind: %d %s lost", item.lost, name)
                elif isinstance(item, RegistrationEvent):
                    batch.registrations.append(item)
                else:
                    items.append(item)  # type: ignore[arg-type]
        return batch

    def _fail(self, message: str, lost: int) -> None:
        pending = self._pending()
        self._close_readers()
        self._events = self._messages = None
        log.error("event log off: %s; the engine goes on without it", message)
        st = self.status
        self._set(ok=False, error=message, running=False, rows_lost=st.rows_lost + lost + pending)
        if self._executor is not None:
            self._executor.submit(self._sink.close)

    def _close_readers(self) -> None:
        for reader in (self._events, self._messages):
            if reader is not None:
                reader.close()

    def _set(self, **changes: object) -> None:
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        for listener in self._listeners:
            try:
                listener(self.status)
            except Exception:
                log.exception("event log status listener failed")
