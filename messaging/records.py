"""Keeps the SQL mirror of subscriptions (models.Subscription) in step with Redis.

Connections note changes here and go on at once; a background task per event loop
writes them in batches every FLUSH_S seconds (one thread hop, bulk queries), so no
frame waits for the database. Only the admin reads the mirror.
"""
import asyncio
import logging

from channels.db import database_sync_to_async

from .models import Channel, Subscription

log = logging.getLogger(__name__)
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


class Mirror:
    """Batches one event loop's subscription changes into apply_changes calls."""

    def __init__(self):
        self.pending: dict[tuple[str, str], bool] = {}
        self.task: asyncio.Task | None = None

    def note(self, channel: str, userid: str, subscribed: bool) -> None:
        """Queue a change (the latest per channel and user wins); never blocks."""
        self.pending[(channel, userid)] = subscribed
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.flush_soon())

    async def flush_soon(self) -> None:
        while self.pending:
            await asyncio.sleep(FLUSH_S)
            batch, self.pending = self.pending, {}
            try:
                await database_sync_to_async(apply_changes)(batch)
            except Exception:  # the mirror is for the admin only: never break delivery for it
                log.exception("could not update the subscription mirror (%d changes)", len(batch))


_mirrors: dict[asyncio.AbstractEventLoop, Mirror] = {}


def mirror() -> Mirror:
    """The Mirror of the running event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _mirrors:
        _mirrors[loop] = Mirror()
    return _mirrors[loop]
