"""Message timestamps (`ts`, Unix nanoseconds) and their Redis Stream ids.

A message's stream entry id *is* its ts: `<ts // 10**6>-<ts % 10**6>` (milliseconds,
then the remaining nanoseconds as the sequence part), so stream order is ts order, range
queries by ts are range queries by id, and the message `id` is unique in its channel.
The atomic assignment lives in lua/publish.lua; `next_ts` is the same rule in Python.
"""

from datetime import datetime, timezone

NS_PER_MS = 1_000_000


def next_ts(now_ns: int, last_ts: int | None) -> int:
    """The ts for a new message: the clock, unless it does not exceed the channel's last ts.

    Strictly increasing per channel even when the clock stands still or steps back:
    returns max(now_ns, last_ts + 1). Both in Unix ns; `last_ts` None for an empty channel.
    """
    if last_ts is None or now_ns > last_ts:
        return now_ns
    return last_ts + 1


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
