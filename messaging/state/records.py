"""Keeps the SQL mirror of subscriptions (models.Subscription) in step with Redis, and
records channels (models.Channel) on their first accepted use.

Connections note changes here and go on at once; a background task per event loop
writes them in batches every FLUSH_S seconds (one thread hop, bulk queries), so no
frame waits for the database. Only the admin reads the subscriptions; the channel rows
are what the admin and `GET /api/channels/` list.
"""
from channels.db import database_sync_to_async

from messaging.models import Channel, Subscription
from messaging.state.writebehind import WriteBehind, per_loop

FLUSH_S = 0.25


def forget_subscriptions(channel: str, userids) -> None:
    """Note that these users' subscriptions to `channel` ended (sync)."""
    apply_changes({(channel, userid): None for userid in userids})


def note_channel(channel: str) -> None:
    """Note a channel's first use, so its row (models.Channel) is written with the
    running loop's next batch: the channel's first accepted publish or subscribe
    records it, nothing refused before does."""
    mirror().note((channel, None), "")


def apply_changes(changes: dict[tuple[str, str | None], str | None]) -> None:
    """Apply {(channel, userid): name} to the mirror in a few bulk queries (sync): a
    string is a subscription and the user's display name at subscribing (PocketBase's
    `name`, may be empty; a known row takes the new name), None ends the subscription;
    (channel, None): "" records the channel alone. Every channel named by a
    subscription is recorded too."""
    added = [(key, name) for key, name in changes.items() if name is not None]
    if added:
        channels = {channel for (channel, _), _ in added}
        Channel.objects.bulk_create([Channel(name=channel) for channel in channels], ignore_conflicts=True)
        ids = dict(Channel.objects.filter(name__in=channels).values_list("name", "id"))
        Subscription.objects.bulk_create(
            [Subscription(channel_id=ids[channel], userid=userid, name=name)
             for (channel, userid), name in added if userid is not None],
            update_conflicts=True, unique_fields=["channel", "userid"], update_fields=["name"],
        )
    removed: dict[str, list[str]] = {}
    for (channel, userid), name in changes.items():
        if name is None:
            removed.setdefault(channel, []).append(userid)
    for channel, userids in removed.items():
        Subscription.objects.filter(channel__name=channel, userid__in=userids).delete()


mirror = per_loop(lambda: WriteBehind(database_sync_to_async(apply_changes), FLUSH_S))
mirror.__doc__ = """The running loop's batch of {(channel, userid): name or None} changes: the mirror is
for the admin only, so a failed write is logged and dropped, never breaking delivery."""
