"""WriteBehind: batching, merging, and what happens when a write fails."""
import asyncio

import pytest

from messaging.state.writebehind import WriteBehind, per_loop


class Store:
    """A write target that records batches and can be made to fail."""

    def __init__(self):
        self.batches: list[dict] = []
        self.fail = False
        self.written = asyncio.Event()

    async def write(self, batch: dict):
        if self.fail:
            raise ConnectionError("down")
        self.batches.append(dict(batch))
        self.written.set()


async def test_notes_are_merged_and_written_together():
    store = Store()
    writer = WriteBehind(store.write, 0.01, merge=max)
    writer.note(("alice", "c1"), 5)
    writer.note(("alice", "c1"), 3)  # lower: max keeps 5
    writer.note(("bob", "c1"), 7)
    await asyncio.wait_for(store.written.wait(), 5)
    assert store.batches == [{("alice", "c1"): 5, ("bob", "c1"): 7}]
    assert writer.pending == {}


async def test_discard_forgets_a_pending_value():
    store = Store()
    writer = WriteBehind(store.write, 60)
    writer.note("a", 1)
    writer.note("b", 2)
    writer.discard("a")
    writer.discard("never-noted")
    await writer.flush()
    assert store.batches == [{"b": 2}]
    writer.task.cancel()


async def test_a_failed_write_is_kept_and_merged_with_newer_notes():
    store = Store()
    writer = WriteBehind(store.write, 60, merge=max, keep_on_error=True)
    writer.note("c1", 10)
    writer.note("c2", 10)
    store.fail = True
    with pytest.raises(ConnectionError):
        await writer.flush()
    writer.note("c1", 12)  # newer than the failed batch
    writer.note("c2", 8)  # older than the failed batch
    store.fail = False
    await writer.flush()
    assert store.batches == [{"c1": 12, "c2": 10}]
    writer.task.cancel()


async def test_a_failed_write_is_dropped_without_keep_on_error(caplog):
    store = Store()
    writer = WriteBehind(store.write, 60)
    writer.note("x", True)
    store.fail = True
    await writer.flush()  # logged, not raised
    assert writer.pending == {} and "dropped" in caplog.text
    writer.task.cancel()


async def test_per_loop_gives_one_object_per_event_loop():
    get = per_loop(object)
    assert get() is get()
    other = await asyncio.to_thread(lambda: asyncio.run(_in_new_loop(get)))
    assert other is not get()


async def _in_new_loop(get):
    return get()
