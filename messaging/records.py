"""Keeps the SQL mirror of subscriptions (models.Subscription) in step with Redis."""
from asgiref.sync import sync_to_async

from .models import Channel, Subscription


def record_subscription(channel: str, userid: str) -> None:
    """Note that `userid` subscribed to `channel` (creating the channel row if needed)."""
    row, _ = Channel.objects.get_or_create(name=channel)
    Subscription.objects.get_or_create(channel=row, userid=userid)


def forget_subscriptions(channel: str, userids) -> None:
    """Note that these users' subscriptions to `channel` ended."""
    Subscription.objects.filter(channel__name=channel, userid__in=list(userids)).delete()


arecord_subscription = sync_to_async(record_subscription)
aforget_subscriptions = sync_to_async(forget_subscriptions)
