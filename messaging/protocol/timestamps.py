"""Message timestamps (`ts`, Unix nanoseconds) and their Redis Stream ids.

A message's stream entry id *is* its ts: `<ts // 10**6>-<ts % 10**6>` (milliseconds,
then the remaining nanoseconds as the sequence part), so stream order is ts order, range
queries by ts are range queries by id, and the message `id` is unique in its channel.
The ts itself is assigned atomically by state/lua/publish.lua (tests/integration/test_history_store.py
checks its rules on a real Redis).
"""

from datetime import datetime, timezone

NS_PER_MS = 1_000_000


def ts_to_id(ts: int) -> str:
    """Stream entry id of a ts in ns: '1764400000123-456789' for 1764400000123456789."""
    return f"{ts // NS_PER_MS}-{ts % NS_PER_MS}"


def id_to_ts(entry_id: str) -> int:
    """Inverse of ts_to_id: the ts in Unix ns of a stream entry id 'ms-seq'."""
    ms, _, seq = entry_id.partition("-")
    return int(ms) * NS_PER_MS + int(seq)


def ts_to_datetime(ts: int) -> datetime:
    """A ts in Unix ns as an aware UTC datetime, exact to the microsecond (truncated)."""
    return datetime.fromtimestamp(ts // 1_000_000_000, tz=timezone.utc).replace(microsecond=(ts // 1000) % 1_000_000)
