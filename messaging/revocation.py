"""Changing a channel's access, and ending the subscriptions of users who lose it.

Shared by `manage.py channel` and the admin. The database change is immediate; other
instances see it within access.POLICY_TTL seconds. Each user who can no longer read
the channel loses the subscription (registry) and gets a `revoked` event on NATS, so
every connection of theirs sends {"type": "unsubscribed", "channel", "reason":
"forbidden"} and nothing more of the channel.
"""
from django.db import transaction

from . import backends, events
from .access import Policy, load_policy
from .models import Channel, ChannelMember
from .records import forget_subscriptions
from .subscriptions import Registry


def change_access(name: str, access: str | None = None, add=(), remove=()) -> Policy:
    """Set `access` and add/remove member user ids (all validated by the caller),
    creating the channel if it was never used; returns the new policy."""
    with transaction.atomic():
        channel, _ = Channel.objects.get_or_create(name=name)
        if access is not None and access != channel.access:
            channel.access = access
            channel.save(update_fields=["access"])
        for userid in add:
            ChannelMember.objects.get_or_create(channel=channel, userid=userid)
        ChannelMember.objects.filter(channel=channel, userid__in=list(remove)).delete()
    return revoke_after_change(name)


def revoke_after_change(name: str) -> Policy:
    """After a channel's access or members changed (command or admin): end the
    subscriptions of users who lost access; returns the channel's new policy."""
    policy = load_policy(name, create=False)
    lost = backends.run_sync(revoke_lost, name, policy)
    forget_subscriptions(name, lost)
    return policy


async def revoke_lost(channel: str, policy: Policy) -> list[str]:
    """End the subscriptions of subscribers who may no longer read `channel`; returns
    their ids. Raises Unavailable when NATS is down (the registry change stands)."""
    be = backends.get()
    registry = Registry(be.redis)
    lost = sorted(u for u in await registry.subscribers(channel) if not policy.may_read(u))
    for userid in lost:
        generation = await registry.unsubscribe(userid, channel)
        await events.fan_out(await be.publisher(), [userid], events.revoked_event(channel, generation))
    return lost
