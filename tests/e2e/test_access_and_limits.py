"""Channel access (open, members, readonly) with `manage.py channel`, and the limits."""
import uuid

import pytest
import requests

from .wsclient import Client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def relay_env():
    return {
        "RELAY_PUBLISH_RATE": "1", "RELAY_PUBLISH_BURST": "3", "RELAY_MAX_SUBSCRIPTIONS_PER_USER": "3",
        "RELAY_MAX_CONNECTIONS_PER_USER": "2", "RELAY_MAX_MESSAGE_CHARS": "20",
    }


def new_channel():
    return f"acl-{uuid.uuid4().hex[:10]}"


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
