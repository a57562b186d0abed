"""The relay on channels_redis' list-based RedisChannelLayer (RELAY_CHANNEL_LAYER=list):
a layer without `new_channel_into`, so connections read it through their own receive
(consumers.py). Live delivery and the user-group notices work as on the default layer."""
import uuid

import pytest

from .wsclient import subscribed_readers

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def relay_env():
    return {"RELAY_CHANNEL_LAYER": "list"}


async def test_live_delivery_and_group_notices_through_the_list_layer(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = f"list-{uuid.uuid4().hex[:8]}"
    readers, publisher = await subscribed_readers(relay.ws_url, alice.token, bob.token, channel)
    sent = [(await publisher.request({"type": "publish", "channel": channel, "text": f"m{i}"}))["message"]
            for i in range(50)]
    for reader in readers:
        assert await reader.messages(50) == sent
    await readers[0].request({"type": "unsubscribe", "channel": channel})
    notice = await readers[1].recv()  # the user's other connection is told (relay.unsubscribed)
    assert notice == {"type": "unsubscribed", "channel": channel}
    for client in (*readers, publisher):
        await client.close()
