"""Changing a channel's access, and ending the subscriptions of users who lose it.

Shared by `manage.py channel` and the admin. The database change is immediate; other
instances see it within access.POLICY_TTL seconds. Each user who can no longer read
the channel loses the subscription (registry) and gets a `revoked` event on NATS, so
every connection of theirs sends {"type": "unsubscribed", "channel", "reason":
"forbidden"} and nothing more of the channel.

A `subscribe` checked against a policy cached before the change can still add such a
user back while the caches expire (and that subscription is newer than the first
revocation, which its connection then ignores). So a change that can take access away
is swept a second time SECOND_SWEEP_AFTER_S later, once every process's cache has
expired: the re-added subscriptions end with a newer generation. Connections check the
policy before each delivery as well (deliver/delivery.py `deliver`) and fan-out goes only
to readers (publish/publish.py); the sweeps keep the registry itself clean.
"""
import logging
import time
from threading import Timer

from django.db import connections, transaction

from messaging.models import Channel, ChannelMember
from messaging.protocol import events
from messaging.publish import jetstream
from messaging.state import backends
from messaging.state.access import POLICY_TTL, Policy, load_policy
from messaging.state.records import forget_subscriptions

log = logging.getLogger(__name__)

SECOND_SWEEP_AFTER_S = POLICY_TTL + 1.0  # every cache expired, and the subscribes checked by them done


def narrows(old: Policy, new: Policy) -> bool:
    """Whether going from `old` to `new` can take read access from someone: the channel
    becomes `members`, or stays so and loses listed users."""
    if new.access != Channel.MEMBERS:
        return False
    return old.access != Channel.MEMBERS or not old.members <= new.members


def change_access(name: str, access: str | None = None, add=(), remove=()) -> Policy:
    """Set `access` and add/remove member user ids (all validated by the caller),
    creating the channel if it was never used; end the subscriptions of users who lost
    access, waiting for the second sweep (SECOND_SWEEP_AFTER_S) when the change can
    take access away. Returns the new policy. Raises Unavailable (NATS) and redis-py's
    errors from the sweeps; the database change stands."""
    with transaction.atomic():
        old = load_policy(name)
        channel, _ = Channel.objects.get_or_create(name=name)
        if access is not None and access != channel.access:
            channel.access = access
            channel.save(update_fields=["access"])
        for userid in add:
            ChannelMember.objects.get_or_create(channel=channel, userid=userid)
        ChannelMember.objects.filter(channel=channel, userid__in=list(remove)).delete()
    policy = sweep(name)
    if narrows(old, policy):
        time.sleep(SECOND_SWEEP_AFTER_S)
        policy = sweep(name)
    return policy


def sweep_now_and_later(name: str) -> Timer:
    """For the admin, after a channel's access or members changed: sweep now, and again
    SECOND_SWEEP_AFTER_S later in a timer thread (the request does not wait for it; a
    failure there is logged). Returns the started timer. Raises like `sweep` (now)."""
    timer = Timer(SECOND_SWEEP_AFTER_S, _sweep_logged, args=(name,))
    timer.daemon = True
    timer.start()
    sweep(name)
    return timer


def _sweep_logged(name: str) -> None:
    try:
        sweep(name)
    except Exception:
        log.exception("second revocation sweep of channel %s failed", name)
    finally:
        connections.close_all()  # this thread's database connection


def sweep(name: str) -> Policy:
    """End the subscriptions of users who may not read channel `name` by its current
    policy (registry, `revoked` event, SQL mirror); returns that policy (sync).
    Raises Unavailable (NATS) and redis-py's errors."""
    policy = load_policy(name)
    lost = backends.run_sync(revoke_lost, name, policy)
    forget_subscriptions(name, lost)
    return policy


async def revoke_lost(channel: str, policy: Policy) -> list[str]:
    """End the subscriptions of subscribers who may no longer read `channel`; returns
    their ids. Each gets a `revoked` event with the generation of that unsubscribe, newer
    than any subscription it ended. Raises Unavailable when NATS is down (the registry
    change stands)."""
    be = backends.get()
    registry = be.registry
    lost = sorted(u for u in await registry.subscribers(channel) if not policy.may_read(u))
    for userid in lost:
        generation = await registry.unsubscribe(userid, channel)
        await jetstream.fan_out(await be.publisher(), [userid], events.revoked_event(channel, generation))
    return lost
