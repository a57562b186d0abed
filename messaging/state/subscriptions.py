"""Subscriptions with their cursors, and the per-user connection count, in Redis.

Keys (user and channel ids validated before they get here):
- `relay:subscriptions:<user>`: hash channel -> cursor (decimal ts in ns, '' = null);
- `relay:subscribers:<channel>`: set of user ids (the publish fan-out list);
- `relay:subgen:<user>`: counter bumped by every subscribe/unsubscribe, so a late
  "unsubscribed" notice never cancels a newer subscription on another connection;
- `relay:connections:<user>`: sorted set of open connection ids -> expiry (ms).
"""
import time
from pathlib import Path

from messaging.state.history import subscribers_key

_LUA = Path(__file__).parent / "lua"
CONNECTION_TTL_MS = 60_000  # a crashed instance's connections stop counting after this


def subscriptions_key(userid: str) -> str:
    """Redis key of a user's subscriptions: hash channel -> cursor (decimal ns, '' = null)."""
    return f"relay:subscriptions:{userid}"


class SubscriptionLimit(Exception):
    """The user already has RELAY_MAX_SUBSCRIPTIONS_PER_USER subscriptions."""


class Registry:
    """Subscriptions, cursors and connection counts on a redis.asyncio client."""

    def __init__(self, redis):
        self.redis = redis
        self._subscribe = redis.register_script((_LUA / "subscribe.lua").read_text())
        self._cursors = redis.register_script((_LUA / "cursors.lua").read_text())
        self._open = redis.register_script((_LUA / "connection_open.lua").read_text())

    async def subscribe(self, userid: str, channel: str, max_subscriptions: int) -> tuple[int | None, int]:
        """Record (or keep) the user's subscription; return (cursor ts or None, generation).

        Raises SubscriptionLimit when a new subscription would exceed the cap.
        """
        reply = await self._subscribe(
            keys=[subscriptions_key(userid), subscribers_key(channel), f"relay:subgen:{userid}"],
            args=[channel, userid, max_subscriptions],
        )
        if reply[0] == "limit":
            raise SubscriptionLimit()
        return (int(reply[1]) if reply[1] else None), int(reply[2])

    async def unsubscribe(self, userid: str, channel: str) -> int:
        """End the user's subscription to `channel`; return the new generation."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(subscribers_key(channel), userid)
            pipe.hdel(subscriptions_key(userid), channel)
            pipe.incr(f"relay:subgen:{userid}")
            *_, generation = await pipe.execute()
        return int(generation)

    async def subscriptions(self, userid: str) -> list[dict]:
        """The user's subscriptions as welcome lists them: [{"channel", "last_ts"}], by name."""
        raw = await self.redis.hgetall(subscriptions_key(userid))
        return [{"channel": c, "last_ts": int(v) if v else None} for c, v in sorted(raw.items())]

    async def advance_cursors(self, userid: str, cursors: dict[str, int]) -> int:
        """Move the user's cursors forward to the given ts (never back); return how many moved."""
        return await self.advance_many({(userid, channel): ts for channel, ts in cursors.items()})

    async def advance_many(self, cursors: dict[tuple[str, str], int]) -> int:
        """Move cursors of many users forward, `{(userid, channel): ts}` (ts in Unix ns),
        in one pipelined round trip; only existing subscriptions move, never back.
        Returns how many moved; raises redis-py's errors when Redis fails."""
        by_user: dict[str, list[str]] = {}
        for (userid, channel), ts in cursors.items():
            by_user.setdefault(userid, []).extend((channel, str(ts)))
        if not by_user:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for userid, args in by_user.items():
                await self._cursors(keys=[subscriptions_key(userid)], args=args, client=pipe)
            return sum(int(moved) for moved in await pipe.execute())

    async def subscribers(self, channel: str) -> set[str]:
        """User ids subscribed to `channel`."""
        return await self.redis.smembers(subscribers_key(channel))

    async def open_connection(self, userid: str, connection_id: str, max_connections: int) -> bool:
        """Count a new connection; False when the user already has `max_connections`."""
        now_ms = int(time.time() * 1000)
        return bool(await self._open(
            keys=[f"relay:connections:{userid}"],
            args=[connection_id, now_ms, CONNECTION_TTL_MS, max_connections],
        ))

    async def refresh_connections(self, connections: dict[tuple[str, str], object]) -> None:
        """Keep live connections, `{(userid, connection_id): _}`, counted for another
        CONNECTION_TTL_MS, all in one pipelined round trip (the values are ignored)."""
        expiry_ms = int(time.time() * 1000) + CONNECTION_TTL_MS
        async with self.redis.pipeline(transaction=False) as pipe:
            for userid, connection_id in connections:
                key = f"relay:connections:{userid}"
                pipe.zadd(key, {connection_id: expiry_ms})
                pipe.pexpire(key, CONNECTION_TTL_MS)
            await pipe.execute()

    async def close_connection(self, userid: str, connection_id: str) -> None:
        """Stop counting a closed connection."""
        await self.redis.zrem(f"relay:connections:{userid}", connection_id)
