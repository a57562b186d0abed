"""Channel access (PROTOCOL.md "access"): the plain rules and the cached policy lookup.

A channel is `open`, `members` or `readonly`. Policies come from the database
(models.Channel) and are cached per process for POLICY_TTL seconds, so a change made
in the admin or by `manage.py channel` reaches every instance within PROTOCOL.md's
5 seconds without a database query per message. Every batch of channel content a
connection sends is checked against the cached policy (deliver/delivery.py `deliver`), so a
cache hit has to be cheap: a dict lookup and a clock read (0.12 µs on the development
machine, where cachetools' TTLCache.get took 1.0 µs), and the loads of many connections
missing at once share one query.
"""
import asyncio
import contextvars
import time
from dataclasses import dataclass

from channels.db import database_sync_to_async

from messaging.aio import retrieve_outcome
from messaging.models import Channel
from messaging.protocol.errors import RelayError
from messaging.state.writebehind import per_loop

POLICY_TTL = 2.0  # seconds
MAX_CACHED = 100_000  # channels; beyond it the expired entries go, then all


@dataclass(frozen=True)
class Policy:
    """A channel's access mode and listed user ids; `recorded` says whether the channel
    has its database row (models.Channel) yet."""

    access: str = Channel.OPEN
    members: frozenset = frozenset()
    recorded: bool = False

    def may_read(self, userid: str) -> bool:
        """Read history and subscribe: everyone unless `members`, then only members."""
        return self.access != Channel.MEMBERS or userid in self.members

    def may_publish(self, userid: str) -> bool:
        """Publish: everyone on `open` channels, only members otherwise."""
        return self.access == Channel.OPEN or userid in self.members

    def readers(self, userids: list[str]) -> list[str]:
        """The users of `userids` who may read the channel, in their order: all of
        them (the same list) unless the channel is `members`."""
        if self.access != Channel.MEMBERS:
            return userids
        return [userid for userid in userids if userid in self.members]


OPEN_POLICY = Policy()
_cache: dict[str, tuple[float, Policy]] = {}  # channel -> (expiry on time.monotonic, policy)
_loads = per_loop(dict)  # channel -> the running loop's task loading its policy


def load_policy(channel: str) -> Policy:
    """Read a channel's policy from the database (sync; OPEN_POLICY for a channel
    without a row: never used, or its first use not recorded yet)."""
    row = Channel.objects.filter(name=channel).first()
    if row is None:
        return OPEN_POLICY
    return Policy(row.access, frozenset(row.members.values_list("userid", flat=True)), recorded=True)


def cached_policy(channel: str) -> Policy | None:
    """The channel's policy when this process read it less than POLICY_TTL seconds
    ago, else None (no I/O)."""
    entry = _cache.get(channel)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    return None


async def policy_for(channel: str) -> Policy:
    """The channel's policy, at most POLICY_TTL seconds old: from the per-process cache,
    else from the database in a thread, one load per channel however many callers
    miss at once. Raises what the database raises."""
    policy = cached_policy(channel)
    if policy is not None:
        return policy
    loads = _loads()
    task = loads.get(channel)
    if task is None:
        # A context of its own, like batching.WriteBehind's: other callers may await it
        # after the request that started it ended.
        task = asyncio.get_running_loop().create_task(_load(channel, loads), context=contextvars.Context())
        loads[channel] = task
        task.add_done_callback(retrieve_outcome)  # seen, even if every caller went away
    return await asyncio.shield(task)  # a caller going away does not cancel the others' load


async def _load(channel: str, loads: dict) -> Policy:
    task = asyncio.current_task()
    try:
        policy = await database_sync_to_async(load_policy)(channel)
        if loads.get(channel) is task:  # not forgotten meanwhile
            if len(_cache) >= MAX_CACHED:
                _prune()
            _cache[channel] = (time.monotonic() + POLICY_TTL, policy)
        return policy
    finally:
        if loads.get(channel) is task:
            del loads[channel]


def _prune() -> None:
    now = time.monotonic()
    for channel in [c for c, (expiry, _) in _cache.items() if expiry <= now]:
        del _cache[channel]
    if len(_cache) >= MAX_CACHED:
        _cache.clear()


def forget(channel: str) -> None:
    """Drop this process's cached policy of `channel` and any load of it in flight on
    the running loop (after a `revoked` event: the next lookup reads the database)."""
    _cache.pop(channel, None)
    _loads().pop(channel, None)


def read_refused(channel: str) -> RelayError:
    """The refusal of a read or subscribe of `channel` by a user who may not read it."""
    return RelayError("forbidden", f"You are not a member of channel '{channel}'.")


async def check_read(channel: str, userid: str) -> Policy:
    """Raise RelayError(forbidden) unless `userid` may read and subscribe to `channel`."""
    policy = await policy_for(channel)
    if not policy.may_read(userid):
        raise read_refused(channel)
    return policy


async def check_publish(channel: str, userid: str) -> Policy:
    """Raise RelayError(forbidden) unless `userid` may publish to `channel`."""
    policy = await policy_for(channel)
    if not policy.may_publish(userid):
        raise RelayError("forbidden", f"You may not publish to channel '{channel}'.")
    return policy
