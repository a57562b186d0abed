"""The seed's scenario and PROTOCOL.md's guarantees, through real daphne and two
relay_worker processes on real Redis, NATS (JetStream) and PocketBase."""
import asyncio
import uuid

import pytest
import requests

from .wsclient import Client

pytestmark = pytest.mark.e2e


def new_channel():
    return f"ch-{uuid.uuid4().hex[:10]}"


async def test_seed_scenario_history_then_live(relay, pb_user):
    """Bob publishes before anyone listens; Alice subscribes, gets it from history,
    then Bob's next messages live, in order, with ts and ids from the relay."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    b = await Client.open(relay.ws_url, bob.token)
    ack = await b.request({"type": "publish", "channel": channel, "text": "hello alice", "client_id": "c-1"})
    assert ack["type"] == "ack" and ack["client_id"] == "c-1"
    first = ack["message"]
    assert (first["channelid"], first["userid"], first["text"], first["name"]) == (channel, bob.id, "hello alice", "Bob")
    assert isinstance(first["ts"], int) and first["id"] == f"{first['ts'] // 10**6}-{first['ts'] % 10**6}"

    a = await Client.open(relay.ws_url, alice.token)
    assert a.welcome == {"type": "welcome", "userid": alice.id, "name": "Alice", "subscriptions": []}
    sub = await a.request({"type": "subscribe", "channel": channel})
    assert sub["type"] == "subscribed" and sub["messages"] == [first] and sub["truncated"] is False

    acks = [(await b.request({"type": "publish", "channel": channel, "text": f"live {i}"}))["message"] for i in range(5)]
    assert await a.messages(5) == acks
    assert [m["ts"] for m in acks] == sorted(m["ts"] for m in acks) and acks[0]["ts"] > first["ts"]
    assert await a.quiet() == []
    await a.close(), await b.close()


async def test_acknowledged_means_stored(relay, pb_user):
    bob = pb_user("Bob")
    channel = new_channel()
    b = await Client.open(relay.ws_url, bob.token)
    acked = [(await b.request({"type": "publish", "channel": channel, "text": f"m{i}"}))["message"] for i in range(20)]
    page = requests.get(f"{relay.http_url}api/channels/{channel}/messages", headers=bob.headers, timeout=10).json()
    assert page == {"messages": acked, "more": False}
    await b.close()


async def test_every_connection_of_every_subscriber_gets_each_message_once_in_order(relay, pb_user):
    alice, carol, bob = pb_user("Alice"), pb_user("Carol"), pb_user("Bob")
    channel = new_channel()
    readers = [await Client.open(relay.ws_url, u.token) for u in (alice, alice, carol)]
    for r in readers:
        await r.request({"type": "subscribe", "channel": channel})
    b = await Client.open(relay.ws_url, bob.token)
    sent = []
    for i in range(60):
        sent.append((await b.request({"type": "publish", "channel": channel, "text": f"n{i}"}))["message"])
    for r in readers:
        assert await r.messages(60) == sent
        assert await r.quiet() == []


async def test_frames_sent_without_waiting_get_their_replies_in_frame_order(relay, pb_user):
    """Publishes overlap while JetStream acks them, but every reply, also a pong or an
    error between them, leaves in the order of the frames, and the acks' ts rise; a
    frame over the size limit at the end is refused after the acks before it."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})
    b = await Client.open(relay.ws_url, bob.token)
    refs = []
    for i in range(40):
        refs.append(f"p{i}")
        await b.send({"type": "publish", "channel": channel, "text": f"n{i}", "ref": refs[-1]})
        if i == 10:
            refs.append(None)  # a binary frame's error carries no ref
            await b.ws.send(b"binary")
        if i == 20:
            refs.append("ping")
            await b.send({"type": "ping", "ref": "ping"})
        if i == 30:
            refs.append("bad")
            await b.send({"type": "publish", "channel": "no spaces", "text": "x", "ref": "bad"})
    await b.send("x" * 70_000)
    replies, code = await b.closed_with()
    assert code == 4413 and len(replies) == len(refs) + 1
    assert [r.get("ref") for r in replies[:-1]] == refs
    assert replies[refs.index(None)]["code"] == "bad_frame"
    assert replies[refs.index("ping")]["type"] == "pong"
    assert replies[refs.index("bad")]["code"] == "invalid_channel"
    assert replies[-1]["code"] == "too_large"
    acked = [r["message"] for r in replies if r["type"] == "ack"]
    assert [m["text"] for m in acked] == [f"n{i}" for i in range(40)]
    assert [m["ts"] for m in acked] == sorted(m["ts"] for m in acked)
    assert await a.messages(40) == acked
    await a.close()


async def test_resume_with_since_is_gapless_and_truncates_beyond_limit(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    b = await Client.open(relay.ws_url, bob.token)
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})
    seen = [(await b.request({"type": "publish", "channel": channel, "text": "seen"}))["message"]]
    assert await a.messages(1) == seen
    await a.close()
    missed = [(await b.request({"type": "publish", "channel": channel, "text": f"missed {i}"}))["message"] for i in range(7)]

    a = await Client.open(relay.ws_url, alice.token)
    sub = await a.request({"type": "subscribe", "channel": channel, "since": seen[0]["ts"], "limit": 10})
    assert (sub["messages"], sub["truncated"]) == (missed, False)

    # Publishing concurrently with the subscribe: every message exactly once across
    # the subscribed frame and the live frames that follow.
    a2 = await Client.open(relay.ws_url, alice.token)
    for i in range(30):  # not awaiting the acks: these race with the subscribe below
        await b.send({"type": "publish", "channel": channel, "text": f"race {i}"})
    sub2 = await a2.request({"type": "subscribe", "channel": channel, "since": missed[-1]["ts"], "limit": 1000})
    acks = [(await b.recv())["message"] for _ in range(30)]
    got = sub2["messages"] + await a2.messages(30 - len(sub2["messages"]))
    assert got == sorted(acks, key=lambda m: m["ts"])
    assert await a2.quiet() == []

    a3 = await Client.open(relay.ws_url, alice.token)
    sub3 = await a3.request({"type": "subscribe", "channel": channel, "since": seen[0]["ts"], "limit": 3})
    everything_after = missed + sorted(acks, key=lambda m: m["ts"])
    assert (sub3["messages"], sub3["truncated"]) == (everything_after[-3:], True)
    older = await a3.request({"type": "history", "channel": channel, "before": sub3["messages"][0]["ts"], "limit": 2})
    assert (older["messages"], older["more"]) == (everything_after[-5:-3], True)
    for c in (a, a2, a3, b):
        await c.close()


async def test_cursor_resumes_a_subscription_without_since(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    b = await Client.open(relay.ws_url, bob.token)
    a = await Client.open(relay.ws_url, alice.token)
    fresh = await a.request({"type": "subscribe", "channel": channel})
    assert (fresh["messages"], fresh["truncated"]) == ([], False)
    m1 = (await b.request({"type": "publish", "channel": channel, "text": "one"}))["message"]
    assert await a.messages(1) == [m1]
    await a.close()
    m2 = (await b.request({"type": "publish", "channel": channel, "text": "two"}))["message"]

    # The cursor is persisted within a second; the welcome lists it.
    async def cursor():
        c = await Client.open(relay.ws_url, alice.token)
        await c.close()
        return c.welcome["subscriptions"]

    for _ in range(100):
        if await cursor() == [{"channel": channel, "last_ts": m1["ts"]}]:
            break
        await asyncio.sleep(0.05)
    assert await cursor() == [{"channel": channel, "last_ts": m1["ts"]}]
    a = await Client.open(relay.ws_url, alice.token)
    resumed = await a.request({"type": "subscribe", "channel": channel})
    assert (resumed["messages"], resumed["truncated"]) == ([m2], False)
    await a.close(), await b.close()


async def test_isolation_between_channels_connections_and_users(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    c1, c2 = new_channel(), new_channel()
    a1 = await Client.open(relay.ws_url, alice.token)
    a2 = await Client.open(relay.ws_url, alice.token)
    await a1.request({"type": "subscribe", "channel": c1})
    await a2.request({"type": "subscribe", "channel": c2})
    b = await Client.open(relay.ws_url, bob.token)
    m1 = (await b.request({"type": "publish", "channel": c1, "text": "for c1", "userid": alice.id, "ts": 1}))["message"]
    m2 = (await b.request({"type": "publish", "channel": c2, "text": "for c2"}))["message"]
    assert m1["userid"] == bob.id and m1["ts"] > 1  # forged fields are ignored
    assert await a1.messages(1) == [m1]
    assert await a2.messages(1) == [m2]
    assert await a1.quiet() == [] and await a2.quiet() == []

    # Unsubscribing on one connection ends the user's subscription on all of them.
    await a1.request({"type": "subscribe", "channel": c2})
    reply = await a2.request({"type": "unsubscribe", "channel": c2})
    assert reply["type"] == "unsubscribed" and reply["channel"] == c2
    assert (await a1.recv()) == {"type": "unsubscribed", "channel": c2}
    await b.request({"type": "publish", "channel": c2, "text": "after unsubscribe"})
    m3 = (await b.request({"type": "publish", "channel": c1, "text": "c1 again"}))["message"]
    assert await a1.messages(1) == [m3]
    assert await a1.quiet() == [] and await a2.quiet() == []
    for c in (a1, a2, b):
        await c.close()


async def test_bad_frames_get_errors_and_the_connection_stays_usable(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = new_channel()
    watcher = await Client.open(relay.ws_url, bob.token)
    await watcher.request({"type": "subscribe", "channel": channel})
    a = await Client.open(relay.ws_url, alice.token)
    cases = [
        ("not json", "bad_frame"), ("[]", "bad_frame"), ('"x"', "bad_frame"), ("{}", "bad_frame"),
        ('{"type": "dance"}', "bad_frame"), ('{"type": "publish", "channel": "a.>", "text": "x"}', "invalid_channel"),
        ('{"type": "subscribe", "channel": "*"}', "invalid_channel"),
        ('{"type": "subscribe", "channel": "' + "x" * 65 + '"}', "invalid_channel"),
        ('{"type": "publish", "channel": "ok", "text": ""}', "invalid_message"),
        ('{"type": "publish", "channel": "ok", "text": "\\u0000"}', "invalid_message"),
        ('{"type": "publish", "channel": "ok", "text": "\\ud83d"}', "invalid_message"),
        ('{"type": "publish", "channel": "ok", "text": "x", "client_id": 5}', "bad_frame"),
        ('{"type": "history", "channel": "ok", "limit": 0}', "bad_frame"),
        ('{"type": "history", "channel": "ok", "since": "5"}', "bad_frame"),
        ('{"type": "subscribe", "channel": "ok", "since": 9223372036854775808}', "bad_frame"),
    ]
    for raw, code in cases:
        await a.send(raw)
        reply = await a.recv()
        assert (reply["type"], reply["code"]) == ("error", code), raw
        assert isinstance(reply["message"], str) and reply["message"]
    await a.ws.send(b"\x00binary")
    assert (await a.recv())["code"] == "bad_frame"
    with_ref = await a.request({"type": "publish", "channel": "no.pe", "text": "x"})
    assert with_ref["code"] == "invalid_channel"  # request() matched the echoed ref
    ok = await a.request({"type": "publish", "channel": channel, "text": "still here"})
    assert ok["type"] == "ack"
    assert await watcher.messages(1) == [ok["message"]]
    assert await watcher.quiet() == []


async def test_oversized_frame_closes_with_4413(relay, pb_user):
    a = await Client.open(relay.ws_url, pb_user("Alice").token)
    await a.send('{"type": "publish", "channel": "c", "text": "' + "x" * 65_600 + '"}')
    frames, code = await a.closed_with()
    assert [f["code"] for f in frames] == ["too_large"] and code == 4413


@pytest.mark.parametrize("token", [None, "garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.x"])
async def test_bad_credentials_close_with_4401(relay, token):
    c = await Client.open(relay.ws_url, token, expect_welcome=False)
    frames, code = await c.closed_with()
    assert [f["code"] for f in frames] == ["unauthorized"] and code == 4401


async def test_query_token_and_bare_authorization_header_work(relay, pb_user):
    alice = pb_user("Alice")
    c = await Client.open(f"{relay.ws_url}?token={alice.token}")
    assert c.welcome["userid"] == alice.id
    d = await Client.open(relay.ws_url, headers={"Authorization": alice.token})
    assert d.welcome["userid"] == alice.id
    await c.close(), await d.close()


async def test_superuser_token_is_refused(relay, pb_admin):
    c = await Client.open(relay.ws_url, pb_admin.superuser_token(), expect_welcome=False)
    frames, code = await c.closed_with()
    assert code == 4401


async def test_cross_site_origin_is_refused_and_allowed_hosts_pass(relay, pb_user):
    alice = pb_user("Alice")
    with pytest.raises(Exception) as refused:
        await Client.open(relay.ws_url, alice.token, origin="https://evil.example")
    assert "403" in str(refused.value)
    ok = await Client.open(relay.ws_url, alice.token, origin="http://127.0.0.1:1234")
    assert ok.welcome["userid"] == alice.id
    await ok.close()


async def test_revoked_token_closes_the_connection_with_4401(relay, pb_user, pb_admin):
    """RELAY_AUTH_CACHE_SECONDS is 2 in tests: deleting the user ends the connection."""
    alice = pb_user("Alice")
    c = await Client.open(relay.ws_url, alice.token)
    pb_admin.delete_user(alice.id)
    frames, code = await c.closed_with(timeout=20)
    assert [f["code"] for f in frames] == ["unauthorized"] and code == 4401


async def test_token_expiring_while_connected_closes_with_4401(relay, pb_user, pb_admin):
    pb_admin.set_token_duration(10)
    try:
        alice = pb_user("Alice")
    finally:
        pb_admin.set_token_duration(604800)
    c = await Client.open(relay.ws_url, alice.token)
    await c.request({"type": "ping"})
    frames, code = await c.closed_with(timeout=20)
    assert [f["code"] for f in frames] == ["unauthorized"] and code == 4401
