"""Guarantee 2 through a worker crash: a relay_worker SIGKILLed mid-stream of 500 messages."""
import asyncio
import uuid

import nats
import pytest

from messaging.fanout.stream import QUEUE_GROUP, STREAM

from .wsclient import Client, subscribed_readers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def relay_env():
    return {"RELAY_WORKER_ACK_WAIT": "3", "RELAY_HEARTBEAT_SECONDS": "2"}


async def wait_for_no_pending_acks(nats_url, timeout=60.0):
    """Poll the JetStream consumer until every delivered event has been acked and none
    waits: then every redelivery has happened (a barrier, not a sleep)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            info = await js.consumer_info(STREAM, QUEUE_GROUP)
            if info.num_ack_pending == 0 and info.num_pending == 0:
                return info
            if loop.time() > deadline:
                raise AssertionError(f"consumer still busy: {info}")
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def test_worker_killed_mid_stream_loses_nothing_doubles_nothing(relay, pb_user, nats_server):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = f"kill-{uuid.uuid4().hex[:8]}"
    readers, b = await subscribed_readers(relay.ws_url, alice.token, bob.token, channel)
    victim = relay.running_workers[0]
    sent = []
    for i in range(500):
        if i == 150:
            victim.kill()  # SIGKILL: its unacked events come back after ack_wait
        ack = await b.request({"type": "publish", "channel": channel, "text": f"m{i}"})
        sent.append(ack["message"])
    replacement = relay.start_worker()
    for r in readers:
        assert await r.messages(500, timeout=60) == sent
    await wait_for_no_pending_acks(nats_server.url)
    for r in readers:
        assert await r.quiet() == []
    assert replacement.running() and not victim.running()


def test_worker_drains_and_exits_0_on_sigterm(relay):
    worker = relay.start_worker()
    assert worker.stop() == 0
    assert "Traceback" not in worker.log_tail()


async def test_two_instances_deliver_once_in_order_across_them(relay, pb_user):
    """Guarantee 2 with several relay instances: subscribers on both daphnes."""
    second = relay.start_web()
    try:
        alice, bob = pb_user("Alice"), pb_user("Bob")
        channel = f"multi-{uuid.uuid4().hex[:8]}"
        readers = [await Client.open(url, alice.token) for url in (relay.ws_url, second.ws_url)]
        for r in readers:
            await r.request({"type": "subscribe", "channel": channel})
        publishers = [await Client.open(url, bob.token) for url in (relay.ws_url, second.ws_url)]
        sent = []
        for i in range(100):
            sent.append((await publishers[i % 2].request({"type": "publish", "channel": channel, "text": f"m{i}"}))["message"])
        for r in readers:
            assert await r.messages(100) == sent
            assert await r.quiet() == []
    finally:
        second.stop()
        relay.webs.remove(second)


async def test_a_stored_message_whose_events_were_lost_still_reaches_subscribers(relay, relay_settings, pb_user):
    """The heartbeat catch-up heals events lost between the history and a connection
    (here: a message stored without any event, as when NATS fails after the store)."""
    from messaging.state import backends

    alice = pb_user("Alice")
    channel = f"lost-{uuid.uuid4().hex[:8]}"
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})

    async def store_without_events():
        return (await backends.get().history.append(channel, "ghost", "Ghost", "no event", None)).message

    message = await asyncio.to_thread(backends.run_sync, store_without_events)
    assert await a.messages(1, timeout=30) == [message]  # RELAY_HEARTBEAT_SECONDS is 2 here
    await a.close()


async def test_repeats_of_messages_whose_events_failed_keep_their_order(relay, relay_settings, pb_user):
    """Two messages stored while their events failed (as in a NATS failover;
    test_scale_out), repeated by their senders with their client_ids, the later first.
    The subscriber gets both, in ts order, exactly once."""
    from messaging.state import backends

    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = f"repeat-{uuid.uuid4().hex[:8]}"
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})

    async def store_without_events(text, client_id):
        store = backends.get().history
        return (await store.append(channel, bob.id, bob.name, text, client_id)).message

    first = await asyncio.to_thread(backends.run_sync, store_without_events, "first", "k-first")
    second = await asyncio.to_thread(backends.run_sync, store_without_events, "second", "k-second")
    b = await Client.open(relay.ws_url, bob.token)
    for text, client_id, stored in (("second", "k-second", second), ("first", "k-first", first)):
        reply = await b.request({"type": "publish", "channel": channel, "text": text, "client_id": client_id})
        assert reply["message"] == stored
    assert await a.messages(2) == [first, second]
    await a.close(), await b.close()
