"""One ordered stream, many readers: each reader has its own bounded queue.

The engine publishes without waiting. A reader that falls behind loses its oldest items, never
slows the publisher, and is told how many it lost: it receives a :class:`Gap` before the next
item it does get.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Gap:
    """This reader lost ``lost`` items here because it fell behind."""

    lost: int


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Reader(Generic[T]):
    """One reader's queue. Iterate with ``async for``; ``close()`` ends the iteration."""

    def __init__(self, hub: "Broadcast[T]", maxsize: int) -> None:
        self._hub = hub
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._lost = 0
        #: The loop the reader was made on. The wake-up is a plain future of that loop, not an
        #: asyncio.Event: an Event binds itself to the loop running when it is first awaited,
        #: and Qt can resume a reader's task while qasync has no loop marked as running (a
        #: nested event loop); the reader would then die with "bound to a different loop".
        self._loop: asyncio.AbstractEventLoop | None = _running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        #: Items lost over this reader's life.
        self.total_lost = 0

    def _put(self, item: T) -> None:
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self._lost += 1
            self.total_lost += 1
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> T | Gap | None:
        """The next item (or a Gap), None when nothing is queued."""
        if self._lost:
            lost, self._lost = self._lost, 0
            return Gap(lost)
        if self._items:
            return self._items.popleft()
        return None

    async def get(self) -> T | Gap:
        """Wait for the next item (or a Gap). Raises StopAsyncIteration once closed and empty."""
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self._closed:
                raise StopAsyncIteration
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[T | Gap]:
        return self

    async def __anext__(self) -> T | Gap:
        return await self.get()

    def close(self) -> None:
        """Stop reading: leave the stream; iteration ends when the queue is empty."""
        self._closed = True
        self._wake()
        self._hub._readers.discard(self)

    def __len__(self) -> int:
        return len(self._items)


class Broadcast(Generic[T]):
    """Publishes each item to every reader."""

    def __init__(self) -> None:
        self._readers: set[Reader[T]] = set()

    def reader(self, maxsize: int = 10000) -> Reader[T]:
        """A new reader that sees every item published from now on."""
        if maxsize < 1:
            raise ValueError("a reader needs room for at least one item")
        reader: Reader[T] = Reader(self, maxsize)
        self._readers.add(reader)
        return reader

    def publish(self, item: T) -> None:
        """Hand ``item`` to every reader; never blocks."""
        for reader in self._readers:
            reader._put(item)

    def close(self) -> None:
        """End every reader's iteration once it has read what is queued."""
        for reader in list(self._readers):
            reader.close()

    @property
    def reader_count(self) -> int:
        """How many readers are attached."""
        return len(self._readers)
