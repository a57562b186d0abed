"""A channel's history: one Redis Stream per channel, `relay:history:<channelid>`.

Entries carry the fields u (userid), t (text), n (sender's display name) and p (id of
the previous entry). Entry ids encode ts (see timestamps.py). All ts are Unix ns.
Redis errors surface as redis-py exceptions; the edges map them to `unavailable`.
"""
import time
from dataclasses import dataclass
from pathlib import Path

from messaging.protocol.limits import DEFAULT_LIMIT, IDEMPOTENCY_SECONDS
from messaging.protocol.timestamps import id_to_ts, ts_to_id
from messaging.state.keys import history_key, idempotency_key, rate_key, subscribers_key

_PUBLISH_LUA = (Path(__file__).parent / "lua" / "publish.lua").read_text()


def to_message(channel: str, entry_id: str, fields: dict) -> dict:
    """The PROTOCOL.md message object of one stream entry."""
    return {
        "id": entry_id,
        "channelid": channel,
        "userid": fields.get("u", ""),
        "name": fields.get("n", ""),
        "text": fields.get("t", ""),
        "ts": id_to_ts(entry_id),
    }


@dataclass
class Stored:
    """Outcome of `append`: the message, its predecessor's ts (0 if none), the channel's
    subscribers at the moment of storing, and whether it repeats an earlier client_id."""

    message: dict
    prev_ts: int
    subscribers: list
    duplicate: bool


@dataclass
class Page:
    """Messages oldest first; `more` says whether another page exists in the paging
    direction; `head` is the newest ts seen by the read (0 if none)."""

    messages: list
    more: bool
    head: int = 0


class RateLimited(Exception):
    """The publisher's token bucket is empty; retry after `retry_after` seconds."""

    def __init__(self, retry_after: float):
        super().__init__(retry_after)
        self.retry_after = retry_after


class HistoryStore:
    """Reads and appends a channel's history on a redis.asyncio client (decode_responses=True).

    `clock` returns Unix ns (time.time_ns); tests pass a frozen or backwards one.
    """

    def __init__(self, redis, *, maxlen: int, max_age_s: float, rate: float, burst: int, clock=time.time_ns):
        self.redis = redis
        self.maxlen = maxlen
        self.max_age_ns = int(max_age_s * 1e9)
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._publish = redis.register_script(_PUBLISH_LUA)

    async def append(self, channel: str, userid: str, name: str, text: str, client_id: str | None) -> Stored:
        """Store one message atomically with its ts and return it with its fan-out list.

        The ts is max(clock, last ts + 1), assigned inside Redis, so it is strictly
        increasing per channel across instances. With `client_id`, a repeat within
        IDEMPOTENCY_SECONDS returns the first message (duplicate=True) and costs no
        rate token. Raises RateLimited when the user's bucket is empty.
        """
        now = self.clock()
        reply = await self._publish(
            keys=[history_key(channel), subscribers_key(channel), idempotency_key(userid, channel, client_id), rate_key(userid)],
            args=[
                now // 1_000_000, now % 1_000_000, userid, text, name,
                self.maxlen, max(0, now - self.max_age_ns) // 1_000_000,
                self.rate, self.burst, "1" if client_id else "0", IDEMPOTENCY_SECONDS,
            ],
        )
        kind = reply[0]
        if kind == "rate":
            raise RateLimited(int(reply[1]) / 1000)
        duplicate = kind == "dup"
        if duplicate:
            _, entry_id, text, name, prev_id, subscribers = reply
        else:
            _, entry_id, prev_id, subscribers = reply
        message = to_message(channel, entry_id, {"u": userid, "t": text, "n": name})
        return Stored(message, id_to_ts(prev_id), subscribers, duplicate)

    async def page(self, channel: str, *, since: int | None = None, before: int | None = None,
                   until: int | None = None, limit: int = DEFAULT_LIMIT) -> Page:
        """A page of history as PROTOCOL.md "Ranges and pages" defines it.

        since/before exclusive, until inclusive (ts in ns). With `since`: the oldest
        `limit` after it (paging forward); otherwise the newest `limit` (paging back).
        """
        key = history_key(channel)
        if before == 0:  # nothing is older than ts 0 (and Redis cannot express it)
            return Page([], False)
        low = f"({ts_to_id(since)}" if since is not None else "-"
        if before is not None:
            high = f"({ts_to_id(before)}"
        elif until is not None:
            high = ts_to_id(until)
        else:
            high = "+"
        if since is not None:
            entries = await self.redis.xrange(key, low, high, count=limit + 1)
            more = len(entries) > limit
            entries = entries[:limit]
        else:
            entries = await self.redis.xrevrange(key, high, low, count=limit + 1)
            more = len(entries) > limit
            entries = entries[:limit][::-1]
        messages = [to_message(channel, eid, fields) for eid, fields in entries]
        return Page(messages, more, messages[-1]["ts"] if messages else 0)

    async def newest_after(self, channel: str, since: int | None, limit: int) -> tuple[Page, bool]:
        """What `subscribe` sends: the newest `limit` messages after `since` (all newest
        when None), oldest first, and whether older ones after `since` were left out."""
        low = f"({ts_to_id(since)}" if since is not None else "-"
        entries = await self.redis.xrevrange(history_key(channel), "+", low, count=limit + 1)
        truncated = len(entries) > limit
        messages = [to_message(channel, eid, f) for eid, f in entries[:limit][::-1]]
        return Page(messages, truncated, messages[-1]["ts"] if messages else 0), truncated

    async def between(self, channel: str, after: int, upto: int, limit: int = 10_000) -> list:
        """Messages with after < ts <= upto, oldest first (gap filling)."""
        entries = await self.redis.xrange(history_key(channel), f"({ts_to_id(after)}", ts_to_id(upto), count=limit)
        return [to_message(channel, eid, f) for eid, f in entries]

    async def heads(self, channels: list[str]) -> list[int]:
        """The newest ts (ns; 0 when empty) of each channel, in one pipelined round trip."""
        if not channels:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.xrevrange(history_key(channel), "+", "-", count=1)
            replies = await pipe.execute()
        return [id_to_ts(r[0][0]) if r else 0 for r in replies]

    async def stats(self, channel: str) -> tuple[int, int | None]:
        """(retained message count, newest ts or None) of a channel."""
        key = history_key(channel)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(key)
            pipe.xrevrange(key, "+", "-", count=1)
            count, last = await pipe.execute()
        return count, (id_to_ts(last[0][0]) if last else None)
