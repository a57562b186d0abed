"""An admin action that reaches live connections: replay (test client as staff, in
this process, against the same Redis and NATS as the running relay)."""
import asyncio
import uuid

import pytest

from messaging.models import Channel

from .wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def test_admin_replay_action_delivers_the_same_ids_again(relay, relay_settings, pb_user, admin_client):
    channel = f"adm-{uuid.uuid4().hex[:8]}"
    alice, bob = pb_user("Alice"), pb_user("Bob")
    loop = asyncio.new_event_loop()

    async def live():
        a = await Client.open(relay.ws_url, alice.token)
        await a.request({"type": "subscribe", "channel": channel})
        b = await Client.open(relay.ws_url, bob.token)
        sent = [(await b.request({"type": "publish", "channel": channel, "text": f"r{i}"}))["message"] for i in range(3)]
        assert await a.messages(3) == sent
        return a, b, sent

    try:
        a, b, sent = loop.run_until_complete(live())
        row = Channel.objects.create(name=channel)
        response = admin_client.post("/admin/messaging/channel/", {
            "action": "replay_range", "_selected_action": [row.pk], "apply": "yes", "since": "10m", "until": "", "user": "",
        })
        assert response.status_code == 302
        frames = loop.run_until_complete(a.frames(3))
        assert all(f["replay"] is True for f in frames)
        assert sorted(f["message"]["id"] for f in frames) == [m["id"] for m in sent]
        loop.run_until_complete(a.close())
        loop.run_until_complete(b.close())
    finally:
        loop.close()
