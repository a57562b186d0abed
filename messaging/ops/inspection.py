"""What the admin reads from and does to a channel's Redis state (async; the admin
calls these through backends.run_sync on a private loop). `GET /api/channels/` lists
its page of channels with channel_stats too."""
from dataclasses import dataclass

from messaging.protocol.timestamps import id_to_ts
from messaging.state import backends
from messaging.state.keys import history_key, subscribers_key, subscriptions_key


@dataclass
class ChannelStats:
    """Retained `messages`, newest and oldest retained ts (ns, None when empty) and
    `subscribers` of a channel."""

    messages: int
    last_ts: int | None
    oldest_ts: int | None
    subscribers: int


async def channel_stats(names: list[str]) -> dict[str, ChannelStats]:
    """Stats of many channels in one pipelined round trip."""
    redis = backends.get().redis
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            key = history_key(name)
            pipe.xlen(key)
            pipe.xrevrange(key, "+", "-", count=1)
            pipe.xrange(key, "-", "+", count=1)
            pipe.scard(subscribers_key(name))
        replies = await pipe.execute()
    stats = {}
    for i, name in enumerate(names):
        count, last, first, subscribers = replies[4 * i: 4 * i + 4]
        stats[name] = ChannelStats(
            count, id_to_ts(last[0][0]) if last else None, id_to_ts(first[0][0]) if first else None, subscribers
        )
    return stats


async def recent_messages(name: str, before: int | None, limit: int):
    """A page of the newest messages (before `before`), newest first."""
    page = await backends.get().history.page(name, before=before, limit=limit)
    return page.messages[::-1], page.more


async def cursors(name: str, userids: list[str]) -> dict[str, int | None]:
    """Each user's cursor ts (ns) for the channel; None before any or when not subscribed."""
    redis = backends.get().redis
    async with redis.pipeline(transaction=False) as pipe:
        for userid in userids:
            pipe.hget(subscriptions_key(userid), name)
        values = await pipe.execute()
    return {u: int(v) if v else None for u, v in zip(userids, values)}


async def trim_history(name: str, keep: int) -> int:
    """Keep only the newest `keep` messages (exactly); returns how many were removed."""
    return await backends.get().redis.xtrim(history_key(name), maxlen=keep, approximate=False)


async def delete_history(name: str) -> int:
    """Delete a channel's whole history; returns how many messages it held."""
    redis = backends.get().redis
    count = await redis.xlen(history_key(name))
    await redis.delete(history_key(name))
    return count
