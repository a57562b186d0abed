"""Channel access (open, members, readonly) with `manage.py channel`, and the limits."""
import asyncio
import sqlite3
import time
import uuid

import pytest
import redis
import requests

from localservers._util import wait_until

from .streams import events_for
from .wsclient import Client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def relay_env():
    return {
        "RELAY_PUBLISH_RATE": "1", "RELAY_PUBLISH_BURST": "3", "RELAY_MAX_SUBSCRIPTIONS_PER_USER": "3",
        "RELAY_MAX_CONNECTIONS_PER_USER": "2", "RELAY_MAX_MESSAGE_CHARS": "20",
    }


CHANGE_REACHES_EVERY_INSTANCE_S = 5.0  # PROTOCOL.md, `manage.py channel`


def new_channel():
    return f"acl-{uuid.uuid4().hex[:10]}"


def channel_rows(relay, prefix: str) -> list[str]:
    """Names of the relay's channel rows (SQL) starting with `prefix`."""
    with sqlite3.connect(relay.base_dir / "db.sqlite3") as db:
        return [name for (name,) in db.execute("SELECT name FROM messaging_channel WHERE name LIKE ?", (prefix + "%",))]


async def test_members_channel_refuses_others_and_revokes_live_subscribers(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})
    shown = relay.manage("channel", channel, "--access", "members", "--add-member", bob.id).stdout
    assert "access: members" in shown and bob.id in shown
    assert await a.recv() == {"type": "unsubscribed", "channel": channel, "reason": "forbidden"}
    b = await Client.open(relay.ws_url, bob.token)
    await b.request({"type": "subscribe", "channel": channel})
    for frame in ({"type": "subscribe", "channel": channel}, {"type": "history", "channel": channel},
                  {"type": "publish", "channel": channel, "text": "let me in"}):
        reply = await a.request(frame)
        assert (reply["type"], reply["code"]) == ("error", "forbidden"), frame
    r = requests.get(f"{relay.http_url}api/channels/{channel}/messages", headers=alice.headers, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    listed = requests.get(f"{relay.http_url}api/channels/", headers=alice.headers, timeout=10).json()["channels"]
    assert channel not in [c["channel"] for c in listed]
    ok = await b.request({"type": "publish", "channel": channel, "text": "members only"})
    assert ok["type"] == "ack" and await b.messages(1) == [ok["message"]]
    assert await a.quiet() == []
    await a.close(), await b.close()


async def test_readonly_channel_lets_everyone_read_and_members_publish(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    relay.manage("channel", channel, "--access", "readonly", "--add-member", bob.id)
    a = await Client.open(relay.ws_url, alice.token)
    assert (await a.request({"type": "subscribe", "channel": channel}))["type"] == "subscribed"
    assert (await a.request({"type": "publish", "channel": channel, "text": "hi"}))["code"] == "forbidden"
    b = await Client.open(relay.ws_url, bob.token)
    ok = await b.request({"type": "publish", "channel": channel, "text": "announcement"})
    assert await a.messages(1) == [ok["message"]]
    await a.close(), await b.close()


def test_channel_command_rejects_bad_input_with_one_line(relay):
    for args in (["a.b"], ["ok", "--access", "secret"], ["ok", "--add-member", "x>y"]):
        done = relay.manage("channel", *args, check=False)
        assert done.returncode != 0 and "Traceback" not in done.stderr, args


async def test_publish_rate_limit_with_retry_after(relay, pb_user):
    bob = pb_user("Bob")
    channel = new_channel()
    b = await Client.open(relay.ws_url, bob.token)
    replies = [await b.request({"type": "publish", "channel": channel, "text": f"m{i}"}) for i in range(4)]
    assert [r["type"] for r in replies[:3]] == ["ack"] * 3
    assert replies[3]["code"] == "rate_limited" and 0 < replies[3]["retry_after"] <= 1.0
    r = requests.post(f"{relay.http_url}api/channels/{channel}/messages", json={"text": "x"}, headers=bob.headers, timeout=10)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
    await b.close()


async def test_message_length_subscription_and_connection_caps(relay, pb_user):
    alice = pb_user("Alice")
    a = await Client.open(relay.ws_url, alice.token)
    assert (await a.request({"type": "publish", "channel": "c", "text": "x" * 21}))["code"] == "invalid_message"
    for i in range(3):
        assert (await a.request({"type": "subscribe", "channel": f"cap{i}"}))["type"] == "subscribed"
    over = await a.request({"type": "subscribe", "channel": "cap3"})
    assert over["code"] == "rate_limited" and "retry_after" not in over
    second = await Client.open(relay.ws_url, alice.token)
    third = await Client.open(relay.ws_url, alice.token, expect_welcome=False)
    frames, code = await third.closed_with()
    assert [f["code"] for f in frames] == ["rate_limited"] and code == 4429
    await second.close()
    await a.close()


async def test_a_user_who_loses_access_while_resubscribing_gets_nothing_more(relay, pb_user, redis_server):
    """Bob re-sends `subscribe` every 2 ms while the channel becomes members-only (Alice
    alone): subscribes checked against a policy cached before the change add him back,
    newer than the revocation. Whatever the interleaving, he gets unsubscribed with
    reason forbidden, leaves the fan-out list, and none of what Alice publishes after
    the protocol's bound reaches him (her own connection gets it all)."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    control = await Client.open(relay.ws_url, alice.token)
    await control.request({"type": "subscribe", "channel": channel})
    b = await Client.open(relay.ws_url, bob.token)
    await b.request({"type": "subscribe", "channel": channel})
    seen, ponged, stop = [], asyncio.Event(), asyncio.Event()

    async def read():
        while True:
            frame = await b.recv(timeout=60)
            seen.append(frame)
            if frame.get("ref") == "last":
                ponged.set()

    async def resubscribe():
        while not stop.is_set():
            await b.send({"type": "subscribe", "channel": channel})
            await asyncio.sleep(0.002)

    reader, spammer = asyncio.create_task(read()), asyncio.create_task(resubscribe())
    changed_at = time.monotonic()
    await asyncio.to_thread(relay.manage, "channel", channel, "--access", "members", "--add-member", alice.id)
    await asyncio.sleep(max(0.0, changed_at + CHANGE_REACHES_EVERY_INSTANCE_S - time.monotonic()))
    sent = [(await control.request({"type": "publish", "channel": channel, "text": f"members only {i}"}))["message"]
            for i in range(3)]
    assert await control.messages(3) == sent
    stop.set()
    await spammer
    await b.send({"type": "ping", "ref": "last"})
    await asyncio.wait_for(ponged.wait(), 30)
    reader.cancel()

    assert {"type": "unsubscribed", "channel": channel, "reason": "forbidden"} in seen
    delivered = [m["id"] for f in seen for m in ([f["message"]] if f["type"] == "message" else f.get("messages", []))]
    assert not {m["id"] for m in sent} & set(delivered)
    assert bob.id not in redis.Redis.from_url(redis_server.url, decode_responses=True).smembers(
        f"relay:subscribers:{channel}")
    await control.close(), await b.close()


async def test_fan_out_of_a_members_channel_goes_to_members_only(relay, pb_user, redis_server, nats_server):
    """A non-member left in the fan-out list (as a subscribe racing with a change can
    leave one until the second revocation sweep) is handed no event."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    relay.manage("channel", channel, "--access", "members", "--add-member", alice.id)
    redis.Redis.from_url(redis_server.url).sadd(f"relay:subscribers:{channel}", bob.id)
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})
    ack = await a.request({"type": "publish", "channel": channel, "text": "members only"})
    assert ack["type"] == "ack" and await a.messages(1) == [ack["message"]]  # every event of it is in JetStream
    assert (await events_for(nats_server.url, alice.id), await events_for(nats_server.url, bob.id)) == (1, 0)
    await a.close()


async def test_subscribes_over_the_cap_and_rate_limited_publishes_record_no_channel(relay, pb_user):
    """3,000 subscribes to distinct channels over the subscription cap (3 here) and a
    publish over the rate limit: only what was accepted is recorded in SQL."""
    alice = pb_user("Alice")
    prefix = f"rows-{uuid.uuid4().hex[:8]}-"
    a = await Client.open(relay.ws_url, alice.token)
    for i in range(3000):
        await a.send({"type": "subscribe", "channel": f"{prefix}{i}", "ref": i})
    replies = [await a.recv() for _ in range(3000)]
    accepted = sorted(f"{prefix}{r['ref']}" for r in replies if r["type"] == "subscribed")
    assert len(accepted) == 3 and sum(r.get("code") == "rate_limited" for r in replies) == 2997
    for i in range(3):
        assert (await a.request({"type": "publish", "channel": f"{prefix}p", "text": "ok"}))["type"] == "ack"
    over = await a.request({"type": "publish", "channel": f"{prefix}limited", "text": "over"})
    assert over["code"] == "rate_limited"
    wait_until(lambda: len(channel_rows(relay, prefix)) >= 4, 30, what="the accepted channels' rows")
    assert sorted(channel_rows(relay, prefix)) == sorted([*accepted, f"{prefix}p"])
    await a.close()
