"""daphne restarted under open clients: they reconnect and resume with `since`, with no
gap and no duplicate, while messages keep coming through a second instance."""
import asyncio
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Resumer:
    """A subscriber that records every message it gets and resumes from the last ts."""

    def __init__(self, url, token, channel):
        self.url, self.token, self.channel = url, token, channel
        self.seen: list[dict] = []
        self.reconnects = 0

    async def run(self, until_count: int):
        while len(self.seen) < until_count:
            try:
                client = await Client.open(self.url, self.token)
            except (OSError, InvalidHandshake, ConnectionClosed, asyncio.TimeoutError):
                await asyncio.sleep(0.1)  # daphne going away or not back yet: the client's own backoff
                continue
            try:
                since = self.seen[-1]["ts"] if self.seen else 0  # 0: from the start of this new channel
                sub = await client.request({"type": "subscribe", "channel": self.channel, "since": since, "limit": 1000})
                self.seen += sub["messages"]
                while len(self.seen) < until_count:
                    self.seen += await client.messages(1, timeout=60)
                await client.close()
            except ConnectionClosed:
                self.reconnects += 1


async def test_clients_resume_after_daphne_restarts(relay, pb_user):
    second = relay.start_web()
    try:
        alice, bob = pb_user("Alice"), pb_user("Bob")
        channel = f"restart-{uuid.uuid4().hex[:8]}"
        readers = [Resumer(relay.ws_url, alice.token, channel) for _ in range(3)]
        for r in readers:  # subscribe first, so the channel has subscribers before publishing
            c = await Client.open(relay.ws_url, alice.token)
            await c.request({"type": "subscribe", "channel": channel})
            await c.close()
        tasks = [asyncio.create_task(r.run(300)) for r in readers]
        publisher = await Client.open(second.ws_url, bob.token)
        sent = []
        for i in range(300):
            if i == 100:
                await asyncio.to_thread(relay.restart_web)  # the readers' daphne goes away and back
            sent.append((await publisher.request({"type": "publish", "channel": channel, "text": f"m{i}"}))["message"])
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        for r in readers:
            assert r.reconnects >= 1
            assert [m["id"] for m in r.seen] == [m["id"] for m in sent]
        await publisher.close()
    finally:
        second.stop()
        relay.webs.remove(second)
