"""Subscription churn leaves nothing behind: 10,000 pipelined subscribe/unsubscribe frames
from several connections of one user, over a few channels, then the user's Redis state,
the `relay_subscriptions` gauge, the NATS consumers of EVENTS, the SQL mirror of
subscriptions and the daphne process's memory are back where they were."""
from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid

import nats
import psutil
import pytest
import redis as redis_sync
import requests
from prometheus_client.parser import text_string_to_metric_families

from localservers import wait_until

from .wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FRAMES = 10_000
CONNECTIONS = 4
CHANNELS = 5
IN_FLIGHT = 250  # frames a connection sends before it reads their replies
WARMUP_FRAMES = 1_000
RSS_BOUND = 30 * 2**20


def gauge(relay, name: str) -> float:
    text = requests.get(f"{relay.http_url}metrics", timeout=15).text
    values = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name and not s.labels]
    assert len(values) == 1, name
    return values[0]


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


async def events_consumers(nats_url: str) -> list[tuple[str, object]]:
    nc = await nats.connect(nats_url, connect_timeout=10)
    try:
        infos = await nc.jetstream().consumers_info("EVENTS")
        return sorted((i.name, i.config.deliver_group) for i in infos)
    finally:
        await nc.close()


def poll(check, timeout=60.0, message="condition"):
    """wait_until (localservers) with this module's default deadline, in seconds."""
    return wait_until(check, timeout, what=message)


def plan(rng: random.Random, channels: list[str], frames: int) -> list[dict]:
    """`frames` subscribe/unsubscribe frames: random channels, repeats included (subscribe
    twice, unsubscribe what is not subscribed), ending with an unsubscribe of every channel."""
    tail = [{"type": "unsubscribe", "channel": c} for c in channels]
    body = []
    for _ in range(frames - len(tail)):
        kind = rng.choice(("subscribe", "subscribe", "unsubscribe"))
        frame = {"type": kind, "channel": rng.choice(channels)}
        if kind == "subscribe" and rng.random() < 0.3:
            frame["limit"] = rng.randint(1, 1000)
        body.append(frame)
    return body + tail


async def pipelined(client: Client, frames: list[dict], tag: str) -> dict:
    """Send `frames` IN_FLIGHT at a time without waiting, then read until every one of them
    is answered; returns counts of reply types. Notices of the user's other connections
    (`unsubscribed` without a ref) are counted apart."""
    counts = {"subscribed": 0, "unsubscribed": 0, "notices": 0}
    for start in range(0, len(frames), IN_FLIGHT):
        batch = frames[start:start + IN_FLIGHT]
        waiting = {}
        for i, frame in enumerate(batch):
            ref = f"{tag}:{start + i}"
            waiting[ref] = frame
            await client.send({**frame, "ref": ref})
        while waiting:
            reply = await client.recv(timeout=120)
            ref = reply.get("ref")
            if ref is None:
                assert reply["type"] == "unsubscribed" and set(reply) == {"type", "channel"}, reply
                counts["notices"] += 1
                continue
            frame = waiting.pop(ref)
            expected = "subscribed" if frame["type"] == "subscribe" else "unsubscribed"
            assert reply["type"] == expected and reply["channel"] == frame["channel"], (frame, reply)
            counts[expected] += 1
    return counts


async def churn(clients: list[Client], channels: list[str], frames: int, seed: int) -> dict:
    per = frames // len(clients)
    rng = random.Random(seed)
    plans = [plan(random.Random(rng.random()), channels, per) for _ in clients]
    results = await asyncio.gather(*(pipelined(c, p, f"{seed}:{n}") for n, (c, p) in enumerate(zip(clients, plans))))
    total = {k: sum(r[k] for r in results) for k in results[0]}
    assert total["subscribed"] + total["unsubscribed"] == per * len(clients)
    return total


def sql_subscriptions(relay, channels: list[str]) -> list[tuple[str, str]]:
    """The relay's SQL mirror of subscriptions (what the admin lists) for `channels`."""
    db = sqlite3.connect(f"file:{relay.base_dir / 'db.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        marks = ",".join("?" * len(channels))
        return db.execute(
            "SELECT c.name, s.userid FROM messaging_subscription s JOIN messaging_channel c ON c.id = s.channel_id "
            f"WHERE c.name IN ({marks})", channels).fetchall()
    finally:
        db.close()


@pytest.mark.timeout(900)
def test_ten_thousand_subscribe_unsubscribe_frames_leave_no_leak(relay, pb_user, redis_server, nats_server):
    user, other = pb_user("Churner"), pb_user("Bystander")
    channels = [f"churn-{uuid.uuid4().hex[:8]}-{i}" for i in range(CHANNELS)]
    r = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    pid = relay.web.pid
    loop = asyncio.new_event_loop()
    try:
        # a bystander subscription on the same channels, which must survive the churn
        keeper = loop.run_until_complete(Client.open(relay.ws_url, other.token))
        for c in channels[:2]:
            assert loop.run_until_complete(keeper.request({"type": "subscribe", "channel": c}))["type"] == "subscribed"
        clients = [loop.run_until_complete(Client.open(relay.ws_url, user.token)) for _ in range(CONNECTIONS)]

        # warm-up (first-use allocations, caches, SQL rows), then the baseline
        loop.run_until_complete(churn(clients, channels, WARMUP_FRAMES, seed=1))
        poll(lambda: r.hlen(f"relay:subscriptions:{user.id}") == 0, message="warm-up to settle")
        gauge_before = gauge(relay, "relay_subscriptions")
        consumers_before = loop.run_until_complete(events_consumers(nats_server.url))
        rss_before = rss(pid)
        started = time.monotonic()

        totals = loop.run_until_complete(churn(clients, channels, FRAMES, seed=2))
        elapsed = time.monotonic() - started

        # everything the churn made is gone (Redis: at once; gauge and SQL: poll)
        assert r.exists(f"relay:subscriptions:{user.id}") == 0 or r.hlen(f"relay:subscriptions:{user.id}") == 0
        for key in r.scan_iter(match="relay:subscribers:*", count=1000):
            assert not r.sismember(key, user.id), key
        assert all(r.smembers(f"relay:subscribers:{c}") == ({other.id} if c in channels[:2] else set()) for c in channels)
        poll(lambda: gauge(relay, "relay_subscriptions") == gauge_before, message="relay_subscriptions back")
        # the user's connections are still usable and get nothing of the channels
        pongs = [loop.run_until_complete(c.quiet()) for c in clients]
        assert all(f["type"] == "unsubscribed" and "ref" not in f for frames in pongs for f in frames)
        consumers_after = loop.run_until_complete(events_consumers(nats_server.url))
        assert consumers_after == consumers_before
        rss_after = rss(pid)
        welcome = loop.run_until_complete(Client.open(relay.ws_url, user.token))
        assert [s for s in welcome.welcome["subscriptions"] if s["channel"] in channels] == []
        loop.run_until_complete(welcome.close())

        # the bystander's subscription was untouched: a publish still reaches it, once
        ack = loop.run_until_complete(clients[0].request({"type": "publish", "channel": channels[0], "text": "after"}))
        assert loop.run_until_complete(keeper.messages(1)) == [ack["message"]]
        assert loop.run_until_complete(keeper.quiet()) == []
        assert all(loop.run_until_complete(c.quiet()) == [] for c in clients)
        # no connection kept a stale subscription: when one connection subscribes again,
        # only it gets the channel's messages (a stale one would deliver them too)
        owners = {c: clients[i % CONNECTIONS] for i, c in enumerate(channels)}
        for c, owner in owners.items():
            assert loop.run_until_complete(owner.request({"type": "subscribe", "channel": c}))["type"] == "subscribed"
        sent = {c: loop.run_until_complete(keeper.request({"type": "publish", "channel": c, "text": c[-1]}))["message"]
                for c in channels}
        by_ts = lambda messages: sorted(messages, key=lambda m: m["ts"])  # noqa: E731
        # (order is per channel: messages of different channels may arrive either way)
        for client in clients:
            mine = [sent[c] for c in channels if owners[c] is client]
            assert by_ts(loop.run_until_complete(client.messages(len(mine)))) == mine
            assert loop.run_until_complete(client.quiet()) == []
        assert by_ts(loop.run_until_complete(keeper.messages(2))) == [sent[c] for c in channels[:2]]
        for c, owner in owners.items():
            assert loop.run_until_complete(owner.request({"type": "unsubscribe", "channel": c}))["type"] == "unsubscribed"
        assert all(f["type"] == "unsubscribed" for c in clients for f in loop.run_until_complete(c.quiet()))
        assert r.hlen(f"relay:subscriptions:{user.id}") == 0

        for c in clients:
            loop.run_until_complete(c.close())
        poll(lambda: gauge(relay, "relay_subscriptions") == gauge_before, message="gauge after closing")
        loop.run_until_complete(keeper.close())
        poll(lambda: gauge(relay, "relay_subscriptions") == gauge_before - 2, message="gauge after the keeper left")
        # the SQL mirror the admin lists: only the bystander's rows
        poll(lambda: sorted(sql_subscriptions(relay, channels)) == sorted((c, other.id) for c in channels[:2]),
             timeout=30, message="the SQL mirror of subscriptions")
    finally:
        r.close()
        loop.close()
    growth = rss_after - rss_before
    print(f"\nchurn: {FRAMES} frames ({totals}) in {elapsed:.1f} s ({FRAMES / elapsed:.0f}/s); daphne RSS "
          f"{rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB ({growth / 2**20:+.1f} MiB); "
          f"relay_subscriptions {gauge_before:g} before and after; EVENTS consumers {consumers_after}")
    assert growth < RSS_BOUND, f"daphne RSS grew by {growth / 2**20:.1f} MiB"


ABANDONED = 40  # connections that pipeline frames and vanish without reading a reply
ABANDONED_FRAMES = 100


@pytest.mark.timeout(900)
def test_connections_dropped_mid_churn_leave_no_leak(relay, pb_user, redis_server):
    """Connections that send a burst of subscribe/unsubscribe frames and drop the TCP
    connection (no close handshake, replies unread) give back their connection count and
    their gauges; the subscriptions they made stay (they last across disconnects) and
    one unsubscribe each ends them everywhere. (Bursts small enough to be handled well
    within daphne's 10 s application_close_timeout; see the next test for larger ones.)"""
    users = [pb_user(f"Dropper{i}") for i in range(4)]
    channels = [f"drop-{uuid.uuid4().hex[:8]}-{i}" for i in range(CHANNELS)]
    r = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    pid = relay.web.pid
    loop = asyncio.new_event_loop()

    async def burst(user, n):
        c = await Client.open(relay.ws_url, user.token)
        for i, frame in enumerate(plan(random.Random(n), channels, ABANDONED_FRAMES)):
            await c.send({**frame, "ref": i})
        c.ws.transport.abort()  # no close frame; the relay's replies are never read

    try:
        gauges_before = (gauge(relay, "relay_connections"), gauge(relay, "relay_subscriptions"))
        rss_before = rss(pid)
        started = time.monotonic()
        for n in range(ABANDONED):
            user = users[n % len(users)]
            loop.run_until_complete(burst(user, n))
            poll(lambda: r.zcard(f"relay:connections:{user.id}") == 0, timeout=30,
                 message=f"dropped connection {n} to stop counting")
        poll(lambda: (gauge(relay, "relay_connections"), gauge(relay, "relay_subscriptions")) == gauges_before,
             message="relay_connections and relay_subscriptions back")
        elapsed = time.monotonic() - started
        rss_after = rss(pid)
        # what they subscribed is still there for their users, and ends with unsubscribe
        for user in users:
            c = loop.run_until_complete(Client.open(relay.ws_url, user.token))
            listed = [s["channel"] for s in c.welcome["subscriptions"]]
            assert set(listed) <= set(channels)
            assert set(listed) == set(r.hkeys(f"relay:subscriptions:{user.id}"))
            for channel in channels:
                loop.run_until_complete(c.request({"type": "unsubscribe", "channel": channel}))
            loop.run_until_complete(c.close())
            assert r.hlen(f"relay:subscriptions:{user.id}") == 0
        assert all(r.scard(f"relay:subscribers:{c}") == 0 for c in channels)
        poll(lambda: gauge(relay, "relay_connections") == gauges_before[0], message="relay_connections back")
    finally:
        r.close()
        loop.close()
    growth = rss_after - rss_before
    print(f"\ndropped: {ABANDONED} connections x {ABANDONED_FRAMES} frames in {elapsed:.1f} s; daphne RSS "
          f"{rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB ({growth / 2**20:+.1f} MiB)")
    assert growth < RSS_BOUND, f"daphne RSS grew by {growth / 2**20:.1f} MiB"


BACKLOG_FRAMES = 20_000  # far more than any machine handles in daphne's 10 s close timeout


@pytest.mark.timeout(300)
def test_a_connection_closed_with_a_long_backlog_stops_counting(relay, pb_user, redis_server):
    user = pb_user("Backlog")
    channels = [f"backlog-{uuid.uuid4().hex[:8]}-{i}" for i in range(CHANNELS)]
    r = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    loop = asyncio.new_event_loop()

    async def flood():
        c = await Client.open(relay.ws_url, user.token)
        for i, frame in enumerate(plan(random.Random(7), channels, BACKLOG_FRAMES)):
            await c.send({**frame, "ref": i})
        await c.close()  # a clean close, replies unread

    try:
        connections_before = gauge(relay, "relay_connections")
        loop.run_until_complete(flood())
        poll(lambda: r.zcard(f"relay:connections:{user.id}") == 0, timeout=30,
             message="the closed connection to stop counting")
        poll(lambda: gauge(relay, "relay_connections") == connections_before, timeout=15, message="relay_connections back")
    finally:
        r.close()
        loop.close()
