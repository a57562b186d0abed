"""Keeps the SQL mirror of subscriptions (models.Subscription) in step with Redis.

Connections note changes here and go on at once; a background task per event loop
writes them in batches every FLUSH_S seconds (one thread hop, bulk queries), so no
frame waits for the database. Only the admin reads the mirror.
"""
from channels.db import database_sync_to_async

from .batching import WriteBehind, per_loop
from .models import Channel, Subscription

FLUSH_S = 0.25


def record_subscription(channel: str, userid: str) -> None:
    """Note that `userid` subscribed to `channel` (creating the channel row if needed)."""
    apply_changes({(channel, userid): True})


def forget_subscriptions(channel: str, userids) -> None:
    """Note that these users' subscriptions to `channel` ended."""
    apply_changes({(channel, userid): False for userid in userids})


def apply_changes(changes: dict[tuple[str, str], bool]) -> None:
    """Apply {(channel, userid): subscribed} to the mirror in a few bulk queries (sync)."""
    added = [key for key, subscribed in changes.items() if subscribed]
    if added:
        names = {channel for channel, _ in added}
        Channel.objects.bulk_create([Channel(name=name) for name in names], ignore_conflicts=True)
        ids = dict(Channel.objects.filter(name__in=names).values_list("name", "id"))
        Subscription.objects.bulk_create(
            [Subscription(channel_id=ids[channel], userid=userid) for channel, userid in added], ignore_conflicts=True
        )
    removed: dict[str, list[str]] = {}
    for (channel, userid), subscribed in changes.items():
        if not subscribed:
            removed.setdefault(channel, []).append(userid)
    for channel, userids in removed.items():
        Subscription.objects.filter(channel__name=channel, userid__in=userids).delete()


mirror = per_loop(lambda: WriteBehind(database_sync_to_async(apply_changes), FLUSH_S))
mirror.__doc__ = """The running loop's batch of {(channel, userid): subscribed} changes: the mirror is
for the admin only, so a failed write is logged and dropped, never breaking delivery."""
