"""A connection whose user lost access to a channel (consumers.py `deliver` and
`check_read`), against a real Redis and the database: whatever would hand it content of
the channel (a live event, a replay, a heartbeat catch-up, a refused subscribe or
history) ends the subscription for real (registry, the user's other connections told)
and sends nothing of the channel."""
import asyncio
import json
import uuid
from types import SimpleNamespace

import pytest
from channels.layers import InMemoryChannelLayer
from django.db import OperationalError

from messaging.state import access
from messaging.state import backends
from messaging.protocol import events
from messaging.publish import publish as publishing
from messaging.state import records
from messaging.state import cursors as writers
from messaging.deliver.websocket import ChatConsumer, Subscribed
from messaging.deliver.inbox import Inbox
from overrides.channels_redis_layer import user_group
from messaging.models import Channel, ChannelMember
from messaging.deliver.replies import OrderedReplies
from messaging.state.subscriptions import Registry

pytestmark = pytest.mark.django_db(transaction=True)  # the policy is loaded in another thread

FORBIDDEN = {"type": "unsubscribed", "channel": None, "reason": "forbidden"}


def channel_with(access: str, members=()) -> str:
    name = f"gate-{uuid.uuid4().hex[:10]}"
    row = Channel.objects.create(name=name, access=access)
    for userid in members:
        ChannelMember.objects.create(channel=row, userid=userid)
    return name


async def subscribed_connection(channel: str, userid: str):
    """A ChatConsumer of `userid` with `channel` subscribed (registry and connection),
    the frames it sends, and the layer channel of another connection of the user."""
    consumer = ChatConsumer()
    be = backends.get()
    consumer.user, consumer.connection_id, consumer.closed = SimpleNamespace(id=userid), uuid.uuid4().hex, False
    consumer.registry, consumer.history = Registry(be.redis), publishing.history_store(be.redis)
    consumer.cursors, consumer.catch_up_due, consumer.catch_up_delay = writers.cursors(), False, 0.0
    consumer.channel_layer = InMemoryChannelLayer()
    consumer.channel_name = await consumer.channel_layer.new_channel()
    other = await consumer.channel_layer.new_channel()
    await consumer.channel_layer.group_add(user_group(userid), other)
    sent = []

    async def send_frame(frame):
        sent.append(frame)

    consumer.send_frame = send_frame
    consumer.replies = OrderedReplies(send_frame, 64)
    _, generation = await consumer.registry.subscribe(userid, channel, 10)
    consumer.subscribed = {channel: Subscribed(0, generation)}
    return consumer, sent, other


async def live(consumer, channel, stored):
    await consumer.handle_event(events.message_event(stored.message, stored.prev_ts))


async def replay(consumer, channel, stored):
    await consumer.handle_event(events.replay_event(stored.message))


async def catch_up(consumer, channel, stored):
    await consumer.relay_catch_up({"type": "relay.catch_up"})


async def subscribe(consumer, channel, stored):
    await consumer.receive(text_data=json.dumps({"type": "subscribe", "channel": channel}))


async def history(consumer, channel, stored):
    await consumer.receive(text_data=json.dumps({"type": "history", "channel": channel}))


@pytest.mark.parametrize("path", [live, replay, catch_up, subscribe, history], ids=lambda f: f.__name__)
def test_a_connection_whose_user_lost_access_ends_the_subscription_and_sends_nothing(relay_settings, path):
    channel = channel_with(Channel.MEMBERS, ["aliceid"])

    async def scenario():
        consumer, sent, other = await subscribed_connection(channel, "bobid")
        stored = await consumer.history.append(channel, "aliceid", "Alice", "members only", None)
        await path(consumer, channel, stored)
        told = await asyncio.wait_for(consumer.channel_layer.receive(other), 10)  # sent before the path returned
        in_fan_out = "bobid" in await consumer.registry.subscribers(channel)
        await records.mirror().flush()
        return sent, told, in_fan_out, consumer.subscribed

    sent, told, in_fan_out, subscribed = backends.run_sync(scenario)
    assert sent[0] == {**FORBIDDEN, "channel": channel}
    assert [f["code"] for f in sent[1:]] == ([] if path in (live, replay, catch_up) else ["forbidden"])
    assert (told["type"], told["channel"], told["reason"]) == ("relay.unsubscribed", channel, "forbidden")
    assert not in_fan_out and subscribed == {}


@pytest.mark.parametrize("access,members", [(Channel.READONLY, []), (Channel.MEMBERS, ["aliceid", "bobid"])])
def test_a_reader_keeps_getting_the_channel(relay_settings, access, members):
    channel = channel_with(access, members)

    async def scenario():
        consumer, sent, _ = await subscribed_connection(channel, "bobid")
        stored = await consumer.history.append(channel, "aliceid", "Alice", "for readers", None)
        await live(consumer, channel, stored)
        await replay(consumer, channel, stored)
        await consumer.cursors.flush()
        return sent, stored.message

    sent, message = backends.run_sync(scenario)
    assert sent == [{"type": "message", "message": message}, {"type": "message", "message": message, "replay": True}]


def test_a_policy_the_database_cannot_give_holds_the_delivery_back_for_a_catch_up(relay_settings, monkeypatch):
    channel = channel_with(Channel.OPEN)

    def unavailable(name):
        raise OperationalError("database is locked")

    monkeypatch.setattr(access, "load_policy", unavailable)

    async def scenario():
        consumer, sent, _ = await subscribed_connection(channel, "bobid")
        consumer.inbox = Inbox()
        stored = await consumer.history.append(channel, "aliceid", "Alice", "later", None)
        await live(consumer, channel, stored)
        return sent, consumer.catch_up_due, list(consumer.subscribed)

    assert backends.run_sync(scenario) == ([], True, [channel])
