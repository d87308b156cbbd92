"""The engine's ordered streams: every reader gets every item, a slow one loses the oldest and
is told, and a reader can be waited on whatever the loop says about itself."""

import asyncio

import pytest

from engine.api.streams import Broadcast, Gap, Reader


async def test_every_reader_gets_every_item_in_order() -> None:
    hub: Broadcast[int] = Broadcast()
    first, second = hub.reader(), hub.reader()
    for n in range(3):
        hub.publish(n)
    assert [await first.get() for _ in range(3)] == [0, 1, 2]
    assert [await second.get() for _ in range(3)] == [0, 1, 2]


async def test_a_slow_reader_loses_the_oldest_and_is_told_how_many() -> None:
    hub: Broadcast[int] = Broadcast()
    reader = hub.reader(maxsize=2)
    for n in range(5):
        hub.publish(n)
    assert [await reader.get() for _ in range(3)] == [Gap(3), 3, 4]
    assert reader.total_lost == 3


async def test_a_waiting_reader_wakes_on_publish_and_ends_on_close() -> None:
    hub: Broadcast[str] = Broadcast()
    reader = hub.reader()
    waiting = asyncio.ensure_future(reader.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.publish("x")
    assert await waiting == "x"
    ending = asyncio.ensure_future(reader.get())
    await asyncio.sleep(0)
    reader.close()
    with pytest.raises(StopAsyncIteration):
        await ending
    assert hub.reader_count == 0


def test_a_reader_can_be_waited_on_while_no_loop_is_marked_running() -> None:
    """Qt (through qasync) can resume a task while no asyncio loop is marked as running. The
    console's event reader died there once ("bound to a different event loop")."""
    loop = asyncio.new_event_loop()
    try:
        hub: Broadcast[int] = Broadcast()

        async def made_on_the_loop() -> Reader[int]:
            return hub.reader()

        reader = loop.run_until_complete(made_on_the_loop())
        step = reader.get()
        waited = step.send(None)  # nothing queued: it waits, with no loop running now
        assert asyncio.isfuture(waited) and waited.get_loop() is loop
        hub.publish(7)
        assert waited.done()
        with pytest.raises(StopIteration) as got:
            step.send(None)
        assert got.value.value == 7
    finally:
        loop.close()
