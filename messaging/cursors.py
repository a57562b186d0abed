"""The users' cursors (the last ts each subscription has been sent), persisted in batches.

Connections note every ts they send; the process writes them to Redis within
FLUSH_S seconds, all users and channels in one pipelined round trip
(Registry.advance_many), instead of each connection flushing its own. A failed write
is kept and tried again with what was noted meanwhile (the highest ts wins).
"""
from . import backends
from .batching import WriteBehind, per_loop
from .subscriptions import Registry

FLUSH_S = 0.5  # cursors are persisted within a second of moving


def _writer() -> WriteBehind:
    registry = Registry(backends.get().redis)
    return WriteBehind(registry.advance_many, FLUSH_S, merge=max, keep_on_error=True)


pending = per_loop(_writer)
pending.__doc__ = """The running loop's cursors to persist: note((userid, channel), ts)."""
