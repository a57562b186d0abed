"""Subscriptions with their cursors, and the per-user connection count, in Redis
(keys.py: `relay:subscriptions:<user>`, `relay:subscribers:<channel>`,
`relay:subgen:<user>`, `relay:connections:<user>`).

The generation counter is bumped by every subscribe and unsubscribe of a user, so a late
"unsubscribed" notice never cancels a newer subscription on another connection.
"""
import time
from pathlib import Path

from messaging.state.keys import connections_key, generation_key, subscribers_key, subscriptions_key

_LUA = Path(__file__).parent / "lua"
_SUBSCRIBE, _CURSORS, _OPEN = ((_LUA / name).read_text() for name in ("subscribe.lua", "cursors.lua", "connection_open.lua"))
CONNECTION_TTL_MS = 60_000  # a crashed instance's connections stop counting after this


class SubscriptionLimit(Exception):
    """The user already has RELAY_MAX_SUBSCRIPTIONS_PER_USER subscriptions."""


class Registry:
    """Subscriptions, cursors and connection counts on a redis.asyncio client."""

    def __init__(self, redis):
        self.redis = redis
        self._subscribe = redis.register_script(_SUBSCRIBE)
        self._cursors = redis.register_script(_CURSORS)
        self._open = redis.register_script(_OPEN)

    async def subscribe(self, userid: str, channel: str, max_subscriptions: int) -> tuple[int | None, int]:
        """Record (or keep) the user's subscription; return (cursor ts or None, generation).

        Raises SubscriptionLimit when a new subscription would exceed the cap.
        """
        reply = await self._subscribe(
            keys=[subscriptions_key(userid), subscribers_key(channel), generation_key(userid)],
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
            pipe.incr(generation_key(userid))
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
            keys=[connections_key(userid)],
            args=[connection_id, now_ms, CONNECTION_TTL_MS, max_connections],
        ))

    async def refresh_connections(self, connections: dict[tuple[str, str], object]) -> None:
        """Keep live connections, `{(userid, connection_id): _}`, counted for another
        CONNECTION_TTL_MS, all in one pipelined round trip (the values are ignored)."""
        expiry_ms = int(time.time() * 1000) + CONNECTION_TTL_MS
        async with self.redis.pipeline(transaction=False) as pipe:
            for userid, connection_id in connections:
                key = connections_key(userid)
                pipe.zadd(key, {connection_id: expiry_ms})
                pipe.pexpire(key, CONNECTION_TTL_MS)
            await pipe.execute()

    async def close_connection(self, userid: str, connection_id: str) -> None:
        """Stop counting a closed connection."""
        await self.redis.zrem(connections_key(userid), connection_id)
