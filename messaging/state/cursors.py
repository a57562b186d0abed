"""What the connections of one process write to Redis in the background, in batches
(writebehind.WriteBehind): one pipelined round trip per batch for all connections,
instead of a round trip per connection. A failed write is kept and tried again.

- `cursors()`: `note((userid, channel), ts)` for every ts a connection sends; the
  cursors move within CURSOR_FLUSH_S (the highest ts wins; Registry.advance_many, which
  runs lua/cursors.lua: forward only, existing subscriptions only).
- `liveness()`: `note((userid, connection_id), True)` at each heartbeat; the
  connections stay counted in the per-user cap (Registry.refresh_connections).
"""
from messaging.state import backends
from messaging.state.writebehind import WriteBehind, per_loop

CURSOR_FLUSH_S = 0.5  # cursors are persisted within a second of moving
LIVENESS_FLUSH_S = 1.0  # far below subscriptions.CONNECTION_TTL_MS

cursors = per_loop(lambda: WriteBehind(backends.get().registry.advance_many, CURSOR_FLUSH_S, merge=max, keep_on_error=True))
liveness = per_loop(lambda: WriteBehind(backends.get().registry.refresh_connections, LIVENESS_FLUSH_S, keep_on_error=True))
