"""Deliver stored messages again (PROTOCOL.md `replay`): through NATS, marked `replay`.

Connections show replayed messages even if they saw them (clients dedupe by id), and a
replay never moves a cursor. Only users who may read the channel get them.
"""
from messaging.protocol import events
from messaging.protocol.errors import RelayError
from messaging.publish import jetstream
from messaging.state import backends
from messaging.state.access import Policy

BATCH = 1000


async def replay(channel: str, since: int | None, until: int | None, user: str | None, dry_run: bool,
                 policy: Policy) -> int:
    """Replay messages with since < ts <= until (Unix ns) of `channel` to its
    subscribers who may read it by `policy` (the channel's, access.load_policy), or to
    `user` only; returns how many messages (not messages x users). Raises
    RelayError(forbidden) when `user` may not read the channel, Unavailable when NATS
    is down, redis-py errors when Redis is."""
    if user is not None and not policy.may_read(user):
        raise RelayError("forbidden", f"user {user} may not read channel {channel} ({policy.access}, not a member)")
    be = backends.get()
    store = be.history
    targets = [user] if user else policy.readers(sorted(await be.registry.subscribers(channel)))
    publisher = None if dry_run or not targets else await be.publisher()
    count, cursor = 0, since or 0  # no real message has ts 0
    while True:
        page = await store.page(channel, since=cursor, until=until, limit=BATCH)
        for message in page.messages:
            if publisher is not None:
                await jetstream.fan_out(publisher, targets, events.replay_event(message))
        count += len(page.messages)
        if not page.more or not page.messages:
            return count
        cursor = page.messages[-1]["ts"]
