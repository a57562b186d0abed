"""Write-behind batches: updates noted by the connections of one event loop, written
together every few hundred milliseconds instead of one round trip per update.

Used for the subscription mirror in SQL (records.py) and for the users' cursors and the
connections' liveness in Redis (cursors.py). Only the latest value per key is written
(or the merge of the values, e.g. the highest ts); noting never blocks and never fails.
"""
import asyncio
import contextvars
import logging
import weakref
from typing import Any, Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class WriteBehind:
    """Pending `{key: value}` of one event loop, written by `write(batch)` within
    `interval_s` seconds of the first note.

    `merge(old, new)` combines two values noted for one key (default: the newer wins).
    When a write raises, `keep_on_error=True` puts the batch back (merged with what was
    noted meanwhile) for the next write; otherwise the failure is logged and the batch
    dropped.
    """

    def __init__(self, write: Callable[[dict], Awaitable[Any]], interval_s: float, *,
                 merge: Callable[[Any, Any], Any] = lambda old, new: new, keep_on_error: bool = False):
        self.write = write
        self.interval_s = interval_s
        self.merge = merge
        self.keep_on_error = keep_on_error
        self.pending: dict[Hashable, Any] = {}
        self.task: asyncio.Task | None = None

    def note(self, key: Hashable, value: Any) -> None:
        """Queue `value` for `key`; the write happens later in the background."""
        self.pending[key] = self.merge(self.pending[key], value) if key in self.pending else value
        if self.task is None or self.task.done():
            # A context of its own: the batch outlives the request or connection that
            # started it (an HTTP request's thread for database calls ends with it).
            self.task = asyncio.get_running_loop().create_task(self.flush_soon(), context=contextvars.Context())

    def discard(self, key: Hashable) -> None:
        """Forget a pending value (nothing is written for `key` unless noted again)."""
        self.pending.pop(key, None)

    async def flush(self) -> None:
        """Write everything pending now. Raises what `write` raised when keep_on_error is
        set (the batch is pending again then)."""
        batch, self.pending = self.pending, {}
        if not batch:
            return
        try:
            await self.write(batch)
        except Exception:
            if not self.keep_on_error:
                log.exception("write-behind batch of %d update(s) dropped", len(batch))
                return
            for key, value in batch.items():
                self.pending[key] = self.merge(value, self.pending[key]) if key in self.pending else value
            raise

    async def flush_soon(self) -> None:
        """Flush every `interval_s` while anything is pending, then end (note() restarts it)."""
        while self.pending:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception as exc:  # kept for the next round
                log.warning("write-behind batch failed (%r); retrying in %.2f s", exc, self.interval_s)


def per_loop(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A function returning one `factory()` object per running event loop (forgotten
    with the loop)."""
    objects: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()

    def get():
        loop = asyncio.get_running_loop()
        if loop not in objects:
            objects[loop] = factory()
        return objects[loop]

    return get
