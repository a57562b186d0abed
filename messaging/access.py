"""Channel access (PROTOCOL.md "access"): the plain rules and the cached policy lookup.

A channel is `open`, `members` or `readonly`. Policies come from the database
(models.Channel) and are cached per process for POLICY_TTL seconds, so a change made
in the admin or by `manage.py channel` reaches every instance within PROTOCOL.md's
5 seconds without a database query per message.
"""
from dataclasses import dataclass

from channels.db import database_sync_to_async
from cachetools import TTLCache

from .errors import RelayError
from .models import Channel

POLICY_TTL = 2.0  # seconds


@dataclass(frozen=True)
class Policy:
    """A channel's access mode and listed user ids."""

    access: str = Channel.OPEN
    members: frozenset = frozenset()

    def may_read(self, userid: str) -> bool:
        """Read history and subscribe: everyone unless `members`, then only members."""
        return self.access != Channel.MEMBERS or userid in self.members

    def may_publish(self, userid: str) -> bool:
        """Publish: everyone on `open` channels, only members otherwise."""
        return self.access == Channel.OPEN or userid in self.members


OPEN_POLICY = Policy()
_cache: TTLCache = TTLCache(maxsize=100_000, ttl=POLICY_TTL)


def load_policy(channel: str, create: bool) -> Policy:
    """Read a channel's policy from the database (sync; OPEN_POLICY for unknown channels).

    `create` records the channel on first use (publish, subscribe).
    """
    if create:
        row, _ = Channel.objects.get_or_create(name=channel)
    else:
        row = Channel.objects.filter(name=channel).first()
        if row is None:
            return OPEN_POLICY
    return Policy(row.access, frozenset(row.members.values_list("userid", flat=True)))


async def policy_for(channel: str, create: bool = False) -> Policy:
    """The channel's policy, from the per-process cache or the database (in a thread)."""
    key = (channel, create)
    policy = _cache.get(key)
    if policy is None:
        policy = await database_sync_to_async(load_policy)(channel, create)
        _cache[key] = policy
    return policy


def forget(channel: str) -> None:
    """Drop this process's cached policy of `channel` (after a `revoked` event)."""
    for create in (False, True):
        _cache.pop((channel, create), None)


async def check_read(channel: str, userid: str, create: bool = False) -> Policy:
    """Raise RelayError(forbidden) unless `userid` may read and subscribe to `channel`."""
    policy = await policy_for(channel, create)
    if not policy.may_read(userid):
        raise RelayError("forbidden", f"You are not a member of channel '{channel}'.")
    return policy


async def check_publish(channel: str, userid: str) -> Policy:
    """Raise RelayError(forbidden) unless `userid` may publish to `channel`."""
    policy = await policy_for(channel, create=True)
    if not policy.may_publish(userid):
        raise RelayError("forbidden", f"You may not publish to channel '{channel}'.")
    return policy
