"""The history store and the subscription registry against a real Redis."""
import uuid

import pytest
import redis.asyncio as aioredis

from messaging.state.history import HistoryStore, RateLimited
from messaging.state.subscriptions import Registry, SubscriptionLimit


@pytest.fixture
async def redis(redis_server):
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def channel():
    return f"c{uuid.uuid4().hex[:12]}"


class FakeClock:
    """A clock the test sets; Unix ns."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def store(redis, clock=None, **kw):
    options = dict(maxlen=10_000, max_age_s=30 * 86400, rate=0, burst=30)
    options.update(kw)
    return HistoryStore(redis, clock=clock or FakeClock(1_764_400_000_123_456_789), **options)


async def filled_store(redis, channel, n):
    """A store with messages m0..m{n-1} in `channel`, 1 µs apart; returns (store, their ts)."""
    clock = FakeClock(1_000_000_000)
    s = store(redis, clock)
    tss = []
    for i in range(n):
        clock.now += 1_000
        tss.append((await s.append(channel, "u", "U", f"m{i}", None)).message["ts"])
    return s, tss


async def test_frozen_clock_still_gives_strictly_increasing_ts(redis, channel):
    s = store(redis)
    tss = [(await s.append(channel, "u1", "U", f"m{i}", None)).message["ts"] for i in range(5)]
    base = 1_764_400_000_123_456_789
    assert tss == [base, base + 1, base + 2, base + 3, base + 4]


async def test_clock_stepping_back_never_reuses_or_reorders_ts(redis, channel):
    clock = FakeClock(1_764_400_000_999_999_999)
    s = store(redis, clock)
    first = (await s.append(channel, "u1", "U", "a", None)).message
    clock.now = 1_764_000_000_000_000_000  # hours back
    second = await s.append(channel, "u1", "U", "b", None)
    assert second.message["ts"] == first["ts"] + 1
    assert second.message["id"] == "1764400001000-0"  # the ns part carried into the next ms
    assert second.prev_ts == first["ts"]


async def test_message_shape_and_prev(redis, channel):
    s = store(redis)
    a = await s.append(channel, "u1", "Ann", "hello", None)
    b = await s.append(channel, "u2", "Bob", "hi", None)
    assert a.message == {"id": "1764400000123-456789", "channelid": channel, "userid": "u1", "name": "Ann",
                         "text": "hello", "ts": 1_764_400_000_123_456_789}
    assert (a.prev_ts, b.prev_ts) == (0, a.message["ts"])


async def test_repeated_client_id_returns_the_first_message_and_stores_nothing(redis, channel):
    s = store(redis)
    first = await s.append(channel, "u1", "U", "once", "k1")
    again = await s.append(channel, "u1", "U", "changed text", "k1")
    other_user = await s.append(channel, "u2", "V", "once", "k1")
    assert again.duplicate and not first.duplicate and not other_user.duplicate
    assert again.message == first.message
    assert (await s.stats(channel))[0] == 2


async def test_rate_limit_token_bucket(redis, channel):
    clock = FakeClock(1_764_400_000_000_000_000)
    s = store(redis, clock, rate=10, burst=3)
    user = f"u{uuid.uuid4().hex[:8]}"
    for i in range(3):
        await s.append(channel, user, "U", f"m{i}", f"k{i}")
    with pytest.raises(RateLimited) as err:
        await s.append(channel, user, "U", "too many", None)
    assert 0 < err.value.retry_after <= 0.1
    # a repeat of an accepted client_id costs no token
    assert (await s.append(channel, user, "U", "m0", "k0")).duplicate
    clock.now += 100_000_000  # 100 ms: one token back
    await s.append(channel, user, "U", "later", None)
    with pytest.raises(RateLimited):
        await s.append(channel, user, "U", "again", None)


async def test_paging_follows_the_protocol(redis, channel):
    s, tss = await filled_store(redis, channel, 10)

    def texts(page):
        return [m["text"] for m in page.messages]

    newest = await s.page(channel, limit=3)
    assert (texts(newest), newest.more) == (["m7", "m8", "m9"], True)
    back = await s.page(channel, before=tss[7], limit=3)
    assert (texts(back), back.more) == (["m4", "m5", "m6"], True)
    forward = await s.page(channel, since=tss[2], limit=3)
    assert (texts(forward), forward.more) == (["m3", "m4", "m5"], True)
    last_forward = await s.page(channel, since=tss[6], limit=3)
    assert (texts(last_forward), last_forward.more) == (["m7", "m8", "m9"], False)
    window = await s.page(channel, since=tss[2], before=tss[5], limit=10)
    assert (texts(window), window.more) == (["m3", "m4"], False)
    until = await s.page(channel, since=tss[2], until=tss[5], limit=10)
    assert texts(until) == ["m3", "m4", "m5"]
    assert (await s.page(channel, before=0)).messages == []
    assert (await s.page(f"{channel}x")).messages == []


async def test_subscribe_read_favours_the_newest(redis, channel):
    s, tss = await filled_store(redis, channel, 6)
    page, truncated = await s.newest_after(channel, tss[0], 3)
    assert ([m["text"] for m in page.messages], truncated, page.head) == (["m3", "m4", "m5"], True, tss[5])
    page, truncated = await s.newest_after(channel, tss[2], 3)
    assert ([m["text"] for m in page.messages], truncated) == (["m3", "m4", "m5"], False)
    page, truncated = await s.newest_after(channel, tss[5], 3)
    assert (page.messages, truncated, page.head) == ([], False, 0)


async def test_retention_keeps_at_least_maxlen(redis, channel):
    s = store(redis, maxlen=100)
    for i in range(600):
        await s.append(channel, "u", "U", f"m{i}", None)
    count, _ = await s.stats(channel)
    assert 100 <= count < 600
    newest = await s.page(channel, limit=100)
    assert newest.messages[-1]["text"] == "m599" and len(newest.messages) == 100


async def test_cursor_only_moves_forward_and_only_for_live_subscriptions(redis, channel):
    reg = Registry(redis)
    user = f"u{uuid.uuid4().hex[:8]}"
    assert await reg.subscribe(user, channel, 10) == (None, 1)
    await reg.advance_cursors(user, {channel: 1_764_400_000_000_000_002})
    await reg.advance_cursors(user, {channel: 1_764_400_000_000_000_001})
    await reg.advance_cursors(user, {channel: 999})  # shorter number, smaller
    assert await reg.subscriptions(user) == [{"channel": channel, "last_ts": 1_764_400_000_000_000_002}]
    cursor, generation = await reg.subscribe(user, channel, 10)
    assert (cursor, generation) == (1_764_400_000_000_000_002, 2)
    assert await reg.unsubscribe(user, channel) == 3
    assert await reg.advance_cursors(user, {channel: 1_764_500_000_000_000_000}) == 0
    assert await reg.subscriptions(user) == [] and user not in await reg.subscribers(channel)


async def test_subscription_cap(redis):
    reg = Registry(redis)
    user = f"u{uuid.uuid4().hex[:8]}"
    for i in range(3):
        await reg.subscribe(user, f"c{i}", 3)
    with pytest.raises(SubscriptionLimit):
        await reg.subscribe(user, "c3", 3)
    await reg.subscribe(user, "c1", 3)  # an existing one is not a new one


async def test_connection_cap_counts_across_instances_and_releases(redis):
    reg = Registry(redis)
    user = f"u{uuid.uuid4().hex[:8]}"
    assert await reg.open_connection(user, "a", 2)
    assert await reg.open_connection(user, "b", 2)
    assert not await reg.open_connection(user, "c", 2)
    await reg.close_connection(user, "a")
    assert await reg.open_connection(user, "c", 2)


async def test_a_repeat_carries_the_prev_of_the_first_publish(redis, channel):
    """Regression: repeats returned prev=0, so their events skipped the gap check and a
    connection could deliver a later message before an earlier repeated one, then drop it."""
    s = store(redis)
    a = await s.append(channel, "u1", "U", "first", "k-a")
    b = await s.append(channel, "u1", "U", "second", "k-b")
    assert (await s.append(channel, "u1", "U", "second", "k-b")).prev_ts == b.prev_ts == a.message["ts"]
    assert (await s.append(channel, "u1", "U", "first", "k-a")).prev_ts == a.prev_ts == 0


async def test_advance_many_moves_several_users_cursors_in_one_call(redis, channel):
    reg = Registry(redis)
    alice, bob, carol = (f"u{uuid.uuid4().hex[:8]}" for _ in range(3))
    other = f"c{uuid.uuid4().hex[:12]}"
    for user in (alice, bob):
        await reg.subscribe(user, channel, 10)
    await reg.subscribe(alice, other, 10)
    moved = await reg.advance_many({
        (alice, channel): 1_764_400_000_000_000_005,
        (alice, other): 1_764_400_000_000_000_007,
        (bob, channel): 1_764_400_000_000_000_006,
        (carol, channel): 1_764_400_000_000_000_009,  # not subscribed: ignored
    })
    assert moved == 3
    assert await reg.subscriptions(alice) == sorted(
        [{"channel": channel, "last_ts": 1_764_400_000_000_000_005}, {"channel": other, "last_ts": 1_764_400_000_000_000_007}],
        key=lambda s: s["channel"],
    )
    assert await reg.subscriptions(bob) == [{"channel": channel, "last_ts": 1_764_400_000_000_000_006}]
    assert await reg.subscriptions(carol) == []
    assert await reg.advance_many({}) == 0


async def test_refresh_connections_keeps_every_listed_connection_counted(redis):
    reg = Registry(redis)
    alice, bob = (f"u{uuid.uuid4().hex[:8]}" for _ in range(2))
    assert await reg.open_connection(alice, "a1", 2) and await reg.open_connection(bob, "b1", 1)
    before = await redis.zscore(f"relay:connections:{alice}", "a1")
    await reg.refresh_connections({(alice, "a1"): True, (bob, "b1"): True})
    assert await redis.zscore(f"relay:connections:{alice}", "a1") >= before
    assert await redis.pttl(f"relay:connections:{bob}") > 0
    assert not await reg.open_connection(bob, "b2", 1)  # bob's one connection still counts
    await reg.close_connection(alice, "a1")
    assert await redis.zscore(f"relay:connections:{alice}", "a1") is None
