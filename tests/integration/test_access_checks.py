"""A connection whose user lost access to a channel (deliver/delivery.py `deliver` and
deliver/commands.py `check_read`), against a real Redis and the database: whatever would hand it content of
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

from messaging.deliver import link as layer_link
from messaging.deliver.services import Services
from messaging.deliver.session import Session, Status
from messaging.deliver.websocket import ChatConsumer
from messaging.models import Channel, ChannelMember
from messaging.protocol import events
from messaging.state import access, backends, records
from messaging.state.keys import user_group

pytestmark = pytest.mark.django_db(transaction=True)  # the policy is loaded in another thread

FORBIDDEN = {"type": "unsubscribed", "channel": None, "reason": "forbidden"}


def channel_with(access: str, members=()) -> str:
    name = f"gate-{uuid.uuid4().hex[:10]}"
    row = Channel.objects.create(name=name, access=access)
    for userid in members:
        ChannelMember.objects.create(channel=row, userid=userid)
    return name


class MemoryLink(layer_link.LayerLink):
    """A layer link on channels' in-memory layer (which has no `new_channel_into`)."""

    async def open(self):
        self.channel_name = await self.layer.new_channel()


class Sent(list):
    """A transport that keeps the frames it is given."""

    async def send(self, frame):
        self.append(frame)

    async def close(self, code):
        pass

    def backlog(self):
        return 0


async def subscribed_connection(channel: str, userid: str):
    """A session of `userid` (real services, real Redis) on a WebSocket consumer, with
    `channel` subscribed (registry and connection), the frames it sends, and the layer
    channel of another connection of the user."""
    link = MemoryLink(InMemoryChannelLayer())
    await link.open()
    other = await link.layer.new_channel()
    await link.layer.group_add(user_group(userid), other)
    sent = Sent()
    consumer = ChatConsumer()
    consumer.session = Session(sent, link, Services.real())
    consumer.session.user, consumer.session.status = SimpleNamespace(id=userid, name=userid), Status.OPEN
    _, generation = await consumer.session.services.registry.subscribe(userid, channel, 10)
    consumer.session.delivery.start(channel, 0, generation)
    return consumer, sent, other


async def live(consumer, channel, stored):
    await consumer.session.delivery.on_events([events.message_event(stored.message, stored.prev_ts)])


async def replay(consumer, channel, stored):
    await consumer.session.delivery.on_events([events.replay_event(stored.message)])


async def catch_up(consumer, channel, stored):
    await consumer.session.delivery.catch_up()


async def subscribe(consumer, channel, stored):
    await consumer.receive(text_data=json.dumps({"type": "subscribe", "channel": channel}))


async def history(consumer, channel, stored):
    await consumer.receive(text_data=json.dumps({"type": "history", "channel": channel}))


@pytest.mark.parametrize("path", [live, replay, catch_up, subscribe, history], ids=lambda f: f.__name__)
def test_a_connection_whose_user_lost_access_ends_the_subscription_and_sends_nothing(relay_settings, path):
    channel = channel_with(Channel.MEMBERS, ["aliceid"])

    async def scenario():
        consumer, sent, other = await subscribed_connection(channel, "bobid")
        services = consumer.session.services
        stored = await services.history.append(channel, "aliceid", "Alice", "members only", None)
        await path(consumer, channel, stored)
        told = await asyncio.wait_for(consumer.session.link.layer.receive(other), 10)  # sent before the path returned
        in_fan_out = "bobid" in await services.registry.subscribers(channel)
        await records.mirror().flush()
        return sent, told, in_fan_out, consumer.session.delivery.subscribed

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
        stored = await consumer.session.services.history.append(channel, "aliceid", "Alice", "for readers", None)
        await live(consumer, channel, stored)
        await replay(consumer, channel, stored)
        await consumer.session.services.cursors.flush()
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
        stored = await consumer.session.services.history.append(channel, "aliceid", "Alice", "later", None)
        await live(consumer, channel, stored)
        delivery = consumer.session.delivery
        return sent, delivery.catch_up_due, list(delivery.subscribed)

    assert backends.run_sync(scenario) == ([], True, [channel])
