"""Scale out: two daphne instances and three relay_workers on a 3-node NATS cluster
whose EVENTS stream has 3 replicas (RELAY_EVENTS_REPLICAS=3), one Redis, one PocketBase.

Checks guarantees 2 and 3 across instances, that the queue group hands each event to
exactly one worker (and how the events spread over the workers), and that nothing is
lost, doubled or reordered when a NATS node or a worker is SIGKILLed mid-stream.
Figures are printed (run with -s to see them): lines starting with "scale-out".
"""
from __future__ import annotations

import asyncio
import os
import signal
import uuid

import nats
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from localservers import NatsCluster
from messaging.fanout.stream import QUEUE_GROUP, STREAM

from .wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAILOVER_S = 90  # bound on any wait for the cluster or the relay to get over a fault
FAULT_MESSAGES = 300  # messages per fault run (two publishers, two instances)
KILL_AT = 90  # the fault strikes once this many messages are acked


# -- topology ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory):
    """Three nats-server nodes with JetStream, routed to each other (cluster "relay")."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def scaled(relay_factory, nats_cluster):
    """The relay scaled out on the cluster: two daphnes (``webs``), three workers each
    with its own metrics port (``workers``). Same Redis and PocketBase as the session."""
    relay = relay_factory(env={"NATS_URL": nats_cluster.url, "RELAY_EVENTS_REPLICAS": "3"}, workers=0)
    try:
        relay.start_web()
        for _ in range(3):
            relay.start_worker(metrics_port=0)
    except BaseException:
        relay.stop()
        raise
    yield relay
    relay.stop()


# -- helpers -----------------------------------------------------------------------------
def new_channel(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def open_client(url: str, token: str, attempts: int = 6) -> Client:
    """A connection past its welcome; like a real client it reconnects with backoff
    after an ``unavailable`` close (a backend call timing out on this busy machine)."""
    for attempt in range(attempts):
        client = await Client.open(url, token, expect_welcome=False)
        first = await client.recv(30)
        if first["type"] == "welcome":
            client.welcome = first
            return client
        assert first.get("code") == "unavailable", first
        await client.close()
        await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError(f"still unavailable after {attempts} attempts")


async def subscribe(client: Client, channel: str, **extra) -> dict:
    reply = await client.request({"type": "subscribe", "channel": channel, **extra}, timeout=30)
    assert reply["type"] == "subscribed", reply
    return reply


class Publisher:
    """Publishes with a client_id and, like a client would, repeats the same client_id
    after ``unavailable`` (bounded by a deadline). Counts what happened."""

    def __init__(self, client: Client, channel: str, name: str):
        self.client, self.channel, self.name = client, channel, name
        self.acked: list[dict] = []
        self.sent = 0
        self.unavailable = 0
        self.retried = 0  # messages that needed more than one attempt
        self.retried_ids: set[str] = set()
        self.timeouts = 0
        self.unavailable_at: list[float] = []  # loop times of the unavailable replies

    async def publish(self, text: str, deadline_s: float = FAILOVER_S) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        client_id = uuid.uuid4().hex
        self.sent += 1
        attempts = 0
        while True:
            attempts += 1
            try:
                reply = await self.client.request(
                    {"type": "publish", "channel": self.channel, "text": text, "client_id": client_id}, timeout=30)
            except (TimeoutError, asyncio.TimeoutError):
                self.timeouts += 1  # no reply in 30 s: ask again, the client_id makes it safe
                reply = {"type": "error", "code": "unavailable"}
            if reply["type"] == "ack":
                assert reply["client_id"] == client_id
                self.acked.append(reply["message"])
                if attempts > 1:
                    self.retried += 1
                    self.retried_ids.add(reply["message"]["id"])
                return reply["message"]
            assert reply["code"] == "unavailable", reply
            self.unavailable += 1
            self.unavailable_at.append(loop.time())
            if loop.time() > deadline:
                raise AssertionError(f"{self.name}: {text!r} still unavailable after {deadline_s} s")
            await asyncio.sleep(0.2)  # poll interval of the retry loop, not a synchronisation


class Reader:
    """Drains one connection in the background (so its socket never backs up and its
    keepalive pongs keep flowing while the test does something else) and keeps the
    ``message`` frames' messages in ``got``, duplicates included."""

    def __init__(self, client: Client):
        self.client = client
        self.got: list[dict] = [f["message"] for f in client.inbox if f["type"] == "message"]
        client.inbox = [f for f in client.inbox if f["type"] != "message"]
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            try:
                frame = await self.client.recv(5)
            except (TimeoutError, asyncio.TimeoutError):
                continue
            if frame["type"] == "message":
                self.got.append(frame["message"])
            else:
                self.client.inbox.append(frame)

    async def wait_for(self, n: int, timeout: float) -> bool:
        """Poll until ``n`` messages came (True) or ``timeout`` s passed (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.got) < n and not self._task.done():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        if self._task.done() and self._task.exception():
            raise self._task.exception()
        return len(self.got) >= n

    async def finish(self) -> list[dict]:
        """Stop draining, then round-trip a ping so that anything still under way
        (a late duplicate) is in ``got`` too; returns ``got``."""
        self._task.cancel()  # cancelling websockets' recv() loses no frame
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self.got += [f["message"] for f in await self.client.quiet() if f["type"] == "message"]
        return self.got


async def consumer_idle(nats_url: str, timeout: float = FAILOVER_S):
    """Poll the JetStream consumer ``relay`` until no event waits and none is unacked
    (so every redelivery has happened); tolerates a cluster that is still electing."""
    nc = await nats.connect(nats_url.split(","), connect_timeout=2, max_reconnect_attempts=-1,
                            reconnect_time_wait=0.2)
    try:
        js = nc.jetstream(timeout=5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        info = last_error = None
        while loop.time() < deadline:
            try:
                info = await js.consumer_info(STREAM, QUEUE_GROUP)
                if info.num_ack_pending == 0 and info.num_pending == 0:
                    return info
            except Exception as exc:  # noqa: BLE001 - leader election in progress
                last_error = exc
            await asyncio.sleep(0.2)
        raise AssertionError(f"consumer still busy after {timeout} s: {info} {last_error!r}")
    finally:
        await nc.close()


async def ack_pending(nats_url: str, at_least: int, timeout: float = 60) -> int:
    """Poll the consumer until ``at_least`` delivered events wait for their ack;
    returns how many do."""
    nc = await nats.connect(nats_url.split(","), connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            info = await js.consumer_info(STREAM, QUEUE_GROUP)
            if info.num_ack_pending >= at_least:
                return info.num_ack_pending
            if loop.time() > deadline:
                raise AssertionError(f"not {at_least} events wait for an ack after {timeout} s: {info}")
            await asyncio.sleep(0.05)
    finally:
        await nc.close()


async def stream_info(nats_url: str):
    nc = await nats.connect(nats_url.split(","), connect_timeout=2)
    try:
        return await nc.jetstream(timeout=10).stream_info(STREAM)
    finally:
        await nc.close()


def worker_counts(worker) -> dict[str, float]:
    """``relay_worker_events_total`` and ``relay_worker_redeliveries_total`` of a worker."""
    text = requests.get(worker.metrics_url, timeout=10).text
    wanted = {"relay_worker_events_total", "relay_worker_redeliveries_total"}
    return {s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name in wanted}


def stored(relay, channel: str, user) -> list[dict]:
    r = requests.get(f"{relay.http_url}api/channels/{channel}/messages",
                     params={"since": 0, "limit": 1000}, headers=user.headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


async def readers_and_publishers(relay, pb_user, channel):
    """Alice and Carol subscribed on both instances (4 connections), Bob publishing on
    the first instance and Dave on the second."""
    alice, carol, bob, dave = pb_user("Alice"), pb_user("Carol"), pb_user("Bob"), pb_user("Dave")
    readers = []
    for user in (alice, carol):
        for web in relay.webs:
            client = await open_client(web.ws_url, user.token)
            await subscribe(client, channel)
            readers.append(client)
    pubs = [Publisher(await open_client(relay.webs[0].ws_url, bob.token), channel, "bob@web0"),
            Publisher(await open_client(relay.webs[1].ws_url, dave.token), channel, "dave@web1")]
    return readers, pubs, bob


async def fault_run(relay, pb_user, nats_cluster, label: str, strike, recover):
    """FAULT_MESSAGES messages from two publishers on two instances to four readers on
    both; ``strike()`` runs once KILL_AT messages are acked, ``recover()`` after the
    last ack. Prints and returns the counts; asserts nothing lost, doubled or reordered."""
    channel = new_channel(label)
    clients, pubs, bob = await readers_and_publishers(relay, pb_user, channel)
    readers = [Reader(c) for c in clients]
    struck = asyncio.Event()

    async def run(pub: Publisher, offset: int):
        for i in range(offset, FAULT_MESSAGES, 2):
            await pub.publish(f"{label} {i}")
            if not struck.is_set() and sum(len(p.acked) for p in pubs) >= KILL_AT:
                struck.set()
                await strike()

    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(run(pubs[0], 0), run(pubs[1], 1))
    publishing_s = loop.time() - started
    await recover()
    acked = sorted((m for p in pubs for m in p.acked), key=lambda m: m["ts"])
    await asyncio.gather(*[r.wait_for(len(acked), FAILOVER_S) for r in readers])
    delivered_s = loop.time() - started
    await consumer_idle(nats_cluster.url)  # every redelivery has happened by now
    got = [await r.finish() for r in readers]
    acked_ids = [m["id"] for m in acked]
    history = stored(relay, channel, bob)
    unavailable = [t for p in pubs for t in p.unavailable_at]
    counts = {
        "sent": sum(p.sent for p in pubs),
        "acked": len(acked),
        "publishing_s": round(publishing_s, 1),
        "all_delivered_s": round(delivered_s, 1),
        "unavailable_replies": sum(p.unavailable for p in pubs),
        "retried_messages": sum(p.retried for p in pubs),
        "unavailable_window_s": round(max(unavailable) - min(unavailable), 1) if unavailable else 0,
        "reply_timeouts": sum(p.timeouts for p in pubs),
        "stored": len(history),
        "stored_distinct_texts": len({m["text"] for m in history}),
        "delivered": [len(m) for m in got],
        "lost": [len(set(acked_ids) - {m["id"] for m in messages}) for messages in got],
        "doubled": [len(messages) - len({m["id"] for m in messages}) for messages in got],
        "out_of_order": [sum(1 for a, b in zip(messages, messages[1:]) if a["ts"] >= b["ts"]) for messages in got],
    }
    print(f"\nscale-out {label}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    assert counts["acked"] == counts["sent"] == FAULT_MESSAGES
    assert history == acked, "each message stored exactly once, retries included"
    for messages in got:
        assert messages == acked, "every reader: every acked message once, in ts order"
    for c in [*clients, *(p.client for p in pubs)]:
        await c.close()
    return counts


# -- tests -------------------------------------------------------------------------------
def test_topology_three_nodes_r3_stream_two_daphnes_three_workers(scaled, nats_cluster):
    info = asyncio.run(stream_info(nats_cluster.url))
    assert info.config.num_replicas == 3
    assert info.cluster.leader and len(info.cluster.replicas) == 2, info.cluster
    assert len(scaled.webs) == 2 and len(scaled.running_workers) == 3
    assert len({w.metrics_port for w in scaled.workers}) == 3
    for web in scaled.webs:
        assert requests.get(f"{web.http_url}readyz", timeout=30).status_code == 200
    print(f"\nscale-out topology: NATS {nats_cluster.url} (meta leader {nats_cluster.meta_leader()}, "
          f"EVENTS leader {info.cluster.leader}), daphnes {[w.port for w in scaled.webs]}, "
          f"workers' metrics ports {[w.metrics_port for w in scaled.workers]}")


async def test_both_instances_deliver_every_message_once_in_ts_order(scaled, pb_user):
    """Guarantee 2 across instances: two publishers on two daphnes at once, subscribers
    of two users on both daphnes."""
    channel = new_channel("both")
    clients, pubs, _ = await readers_and_publishers(scaled, pb_user, channel)
    readers = [Reader(c) for c in clients]

    async def run(pub, offset):
        for i in range(offset, 120, 2):
            await pub.publish(f"m{i}")

    await asyncio.gather(run(pubs[0], 0), run(pubs[1], 1))
    sent = sorted((m for p in pubs for m in p.acked), key=lambda m: m["ts"])
    assert len(sent) == 120 and len({m["ts"] for m in sent}) == 120
    await asyncio.gather(*[r.wait_for(120, 60) for r in readers])
    for r in readers:
        assert await r.finish() == sent
    for c in [*clients, *(p.client for p in pubs)]:
        await c.close()


async def test_resume_with_since_on_the_other_instance_misses_nothing(scaled, pb_user):
    """Guarantee 3 across instances: a connection on daphne 1 leaves mid-stream and
    resumes with ``since`` on daphne 2 while messages keep coming."""
    channel = new_channel("resume")
    alice, bob, dave = pb_user("Alice"), pb_user("Bob"), pb_user("Dave")
    first = await open_client(scaled.webs[0].ws_url, alice.token)
    await subscribe(first, channel)
    pubs = [Publisher(await open_client(scaled.webs[0].ws_url, bob.token), channel, "bob@web0"),
            Publisher(await open_client(scaled.webs[1].ws_url, dave.token), channel, "dave@web1")]

    async def run(pub, offset):
        for i in range(offset, 80, 2):
            await pub.publish(f"r{i}")

    publishing = asyncio.gather(run(pubs[0], 0), run(pubs[1], 1))
    seen = await first.messages(20, timeout=60)
    await first.close()
    last = seen[-1]["ts"]
    second = await open_client(scaled.webs[1].ws_url, alice.token)
    reply = await subscribe(second, channel, since=last)
    reader = Reader(second)
    await publishing
    sent = sorted((m for p in pubs for m in p.acked), key=lambda m: m["ts"])
    assert seen == sent[:20]
    missed = [m for m in sent if m["ts"] > last]
    assert reply["truncated"] is False
    await reader.wait_for(len(missed) - len(reply["messages"]), 60)
    live = await reader.finish()
    assert reply["messages"] + live == missed
    print(f"\nscale-out resume: {len(seen)} seen on web0, then since= on web1: "
          f"{len(reply['messages'])} from the history + {len(live)} live = {len(missed)} missed")
    await second.close()
    for p in pubs:
        await p.client.close()


async def test_queue_group_hands_each_event_to_exactly_one_worker(scaled, pb_user, nats_cluster):
    workers = scaled.running_workers
    await consumer_idle(nats_cluster.url)
    before = [worker_counts(w) for w in workers]
    channel = new_channel("spread")
    users = [pb_user(n) for n in ("Alice", "Carol", "Erin")]
    bob = pb_user("Bob")
    clients = []
    for i, user in enumerate(users):
        client = await open_client(scaled.webs[i % 2].ws_url, user.token)
        await subscribe(client, channel)
        clients.append(client)
    readers = [Reader(c) for c in clients]
    pubs = [Publisher(await open_client(web.ws_url, bob.token), channel, f"bob@{web.name}") for web in scaled.webs]
    messages = 100
    for i in range(messages):
        await pubs[i % 2].publish(f"s{i}")
    sent = sorted((m for p in pubs for m in p.acked), key=lambda m: m["ts"])
    await asyncio.gather(*[r.wait_for(messages, 60) for r in readers])
    await consumer_idle(nats_cluster.url)
    for r in readers:
        assert await r.finish() == sent
    expected = messages * len(users)  # one event per subscribed user per message

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:  # a worker counts an event right after acking it: poll briefly
        after = [worker_counts(w) for w in workers]
        events = [a["relay_worker_events_total"] - b["relay_worker_events_total"] for a, b in zip(after, before)]
        if sum(events) >= expected or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    redeliveries = [a["relay_worker_redeliveries_total"] - b["relay_worker_redeliveries_total"]
                    for a, b in zip(after, before)]
    spread = ", ".join(f"{w.name}={int(e)}" for w, e in zip(workers, events))
    print(f"\nscale-out spread: {messages} messages x {len(users)} users = {expected} events; "
          f"handled per worker: {spread} (sum {int(sum(events))}); redeliveries {[int(r) for r in redeliveries]}")
    assert sum(events) == expected, (events, redeliveries)
    assert sum(redeliveries) == 0
    for c in [*clients, *(p.client for p in pubs)]:
        await c.close()


async def test_repeats_of_messages_stored_during_an_outage_keep_their_order(scaled, relay_settings, pb_user):
    """What a NATS failover does with two publishers: two messages are stored, their
    events fail (``unavailable``), and the senders repeat them with their client_ids,
    the later message's repeat first. The subscriber must get both, in ts order."""
    from messaging.state import backends

    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel("repeat")
    client = await open_client(scaled.webs[0].ws_url, alice.token)
    await subscribe(client, channel)
    reader = Reader(client)

    async def store_without_events(text, client_id):
        store = backends.get().history
        return (await store.append(channel, bob.id, bob.name, text, client_id)).message

    first = await asyncio.to_thread(backends.run_sync, store_without_events, "first", "k-first")
    second = await asyncio.to_thread(backends.run_sync, store_without_events, "second", "k-second")
    publisher = await open_client(scaled.webs[1].ws_url, bob.token)
    for text, client_id, expected in (("second", "k-second", second), ("first", "k-first", first)):
        reply = await publisher.request({"type": "publish", "channel": channel, "text": text, "client_id": client_id})
        assert reply["type"] == "ack" and reply["message"] == expected, reply
    await reader.wait_for(2, 15)
    got = await reader.finish()
    print(f"\nscale-out repeats: subscriber got {[m['text'] for m in got]} (expected ['first', 'second'])")
    await client.close(), await publisher.close()
    assert got == [first, second]


@pytest.mark.timeout(420)
async def test_nats_node_killed_mid_stream_loses_nothing_doubles_nothing(scaled, pb_user, nats_cluster):
    """SIGKILL the node leading the EVENTS stream while two publishers stream; JetStream
    elects a new leader; publishes answered ``unavailable`` meanwhile are retried with
    their client_id and stored once."""
    victim = {}

    async def strike():
        name = nats_cluster.stream_leader(STREAM) or (await stream_info(nats_cluster.url)).cluster.leader
        victim["node"] = nats_cluster.node(name)
        victim["node"].kill()

    async def recover():
        await asyncio.to_thread(victim["node"].start)  # same ports and data dir; waits for /healthz
        await asyncio.to_thread(nats_cluster.wait_healthy, FAILOVER_S)

    try:
        await fault_run(scaled, pb_user, nats_cluster, "nats-node-kill", strike, recover)
    finally:
        if victim.get("node") is not None and not victim["node"].running():
            await asyncio.to_thread(victim["node"].start)
    info = await stream_info(nats_cluster.url)
    print(f"scale-out nats-node-kill: killed {victim['node'].server_name}; EVENTS leader now "
          f"{info.cluster.leader}, replicas {[(p.name, p.current) for p in info.cluster.replicas]}")


@pytest.mark.timeout(420)
async def test_worker_killed_mid_stream_loses_nothing_doubles_nothing(scaled, pb_user, nats_cluster):
    """A worker hangs (SIGSTOP) mid-stream while JetStream keeps handing it events, and
    is then SIGKILLed while it holds unacked ones: they are redelivered to the other
    workers after RELAY_WORKER_ACK_WAIT, the connections fill gaps from the history
    meanwhile, and a replacement joins the queue group."""
    victim = {}
    await consumer_idle(nats_cluster.url)
    before = {w.name: worker_counts(w)["relay_worker_redeliveries_total"] for w in scaled.running_workers}

    async def strike():
        worker = max(scaled.running_workers, key=lambda w: worker_counts(w)["relay_worker_events_total"])
        victim["worker"] = worker
        os.kill(worker.pid, signal.SIGSTOP)
        # Live workers ack within milliseconds: a pile of unacked events is the frozen one's.
        victim["held"] = await ack_pending(nats_cluster.url, at_least=10)
        worker.kill()

    async def recover():
        victim["replacement"] = await asyncio.to_thread(scaled.start_worker, None, (), 0)

    await fault_run(scaled, pb_user, nats_cluster, "worker-kill", strike, recover)
    assert not victim["worker"].running() and victim["replacement"].running()
    redelivered = {w.name: int(worker_counts(w)["relay_worker_redeliveries_total"] - before.get(w.name, 0))
                   for w in scaled.running_workers}
    print(f"scale-out worker-kill: killed {victim['worker'].name} while it held {victim['held']} unacked "
          f"events; redelivered to the live workers: {redelivered}")
    assert sum(redelivered.values()) > 0, "the killed worker's unacked events came back through redelivery"
