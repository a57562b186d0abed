"""A connection's catch-up (delivery.Delivery.schedule_catch_up): however often a failed
gap fill asks for it before it runs, one relay.catch_up reaches the connection's inbox."""
import asyncio

import pytest
from channels.exceptions import StopConsumer

from messaging.deliver.link import LayerLink

from .fakes import World


async def test_a_catch_up_asked_for_many_times_arrives_once_after_the_backoff(monkeypatch):
    link = LayerLink(layer=object())  # its inbox and timers; no channel layer is reached
    delivery = World(link=link).session.delivery
    loop = asyncio.get_running_loop()
    timers = []
    call_later = loop.call_later
    monkeypatch.setattr(loop, "call_later", lambda delay, *args: timers.append(delay) or call_later(delay, *args))
    for _ in range(5):  # e.g. five events meeting a gap while Redis is down
        delivery.schedule_catch_up()
    assert timers == [0.25]
    dispatched = []

    async def dispatch(message):
        dispatched.append(message)
        raise StopConsumer

    with pytest.raises(StopConsumer):
        await asyncio.wait_for(link.inbox.run([], dispatch), 10)
    assert dispatched == [{"type": "relay.catch_up"}]
