"""The session core (messaging/deliver/session.py, delivery.py, commands.py) with
in-memory fakes (fakes.py): opening and its refusals, subscribe and the hand-over to
live delivery, sequencing (drop, deliver, fill), catch-up, unsubscribe, the loss of
access, revocations and their generations, the caps."""
import pytest

from messaging.deliver.session import Status
from messaging.deliver.transport import TransportClosed
from messaging.protocol import events
from messaging.protocol.errors import RelayError
from messaging.protocol.frames import Command
from messaging.state.access import Policy

from .fakes import World, user

C = "room"


@pytest.fixture(autouse=True)
async def released():
    """Every session a test opened is released after it (its keep-alive task ends)."""
    yield
    while World.made:
        await World.made.pop().session.release()


async def opened(world: World | None = None, userid: str = "u1") -> World:
    world = world or World()
    assert await world.session.open(user(userid))
    return world


async def subscribed(world: World | None = None, channel: str = C, since=None, limit=100) -> World:
    world = await opened(world)
    await world.session.handle(Command("subscribe", ref=1, channel=channel, since=since, limit=limit))
    return world


def live(message: dict, prev_ts: int) -> bytes:
    return events.message_event(message, prev_ts)


async def test_open_sends_welcome_with_the_users_subscriptions_and_joins_its_group():
    world = World()
    world.registry.subscriptions_of["u1"] = {"a": 5, "b": None}
    await opened(world)
    assert world.frames == [{"type": "welcome", "userid": "u1", "name": "U",
                             "subscriptions": [{"channel": "a", "last_ts": 5}, {"channel": "b", "last_ts": None}]}]
    assert world.session.status is Status.OPEN and world.link.joined == ["u1"]


@pytest.mark.parametrize("error,code", [(RelayError("unauthorized", "bad token"), 4401),
                                        (RelayError("unavailable", "PocketBase is down"), 4503)])
async def test_a_refused_handshake_gets_its_error_and_close_code(error, code):
    world = World()
    assert not await world.session.open(None, error)
    assert [f["code"] for f in world.frames] == [error.code] and world.transport.closed == [code]
    await world.session.handle(Command("ping", ref=1))
    assert len(world.frames) == 1  # no command is taken


async def test_the_connection_cap_closes_with_4429(settings):
    settings.RELAY_MAX_CONNECTIONS_PER_USER = 1
    first = World()
    second = World(registry=first.registry)
    await opened(first)
    assert not await second.session.open(user())
    assert [f["code"] for f in second.frames] == ["rate_limited"] and second.transport.closed == [4429]


async def test_subscribe_sends_the_newest_page_then_delivers_live_in_order_once():
    world = World()
    old = [world.history.add(C, ts) for ts in (10, 20, 30)]
    await subscribed(world, limit=2)
    assert world.frames[-1] == {"type": "subscribed", "channel": C, "messages": old[1:], "truncated": False, "ref": 1}
    nxt = world.history.add(C, 40)
    await world.session.delivery.on_events([live(old[2], 20), live(nxt, 30), live(nxt, 30)])  # a late one, a repeat
    assert world.frames[-1] == {"type": "message", "message": nxt} and len(world.frames) == 3
    assert world.cursors.pending == {("u1", C): 40}


async def test_a_resume_with_since_says_when_it_was_truncated():
    world = World()
    msgs = [world.history.add(C, ts) for ts in (10, 20, 30)]
    await subscribed(world, since=5, limit=2)
    assert world.frames[-1]["messages"] == msgs[1:] and world.frames[-1]["truncated"] is True


async def test_a_message_whose_predecessor_has_not_arrived_is_filled_from_the_history():
    world = await subscribed()
    a, b, c = (world.history.add(C, ts) for ts in (10, 20, 30))
    await world.session.delivery.on_events([live(c, 20)])  # a and b's events are late
    assert [f["message"] for f in world.frames[2:]] == [a, b, c]
    await world.session.delivery.on_events([live(a, 0), live(b, 10)])  # then they arrive
    assert len(world.frames) == 5


async def test_a_gap_that_cannot_be_filled_waits_for_a_catch_up_instead_of_skipping():
    world = await subscribed()
    a, b = world.history.add(C, 10), world.history.add(C, 20)
    world.history.fail = True
    for _ in range(5):  # five events meeting the gap while Redis is down
        await world.session.delivery.on_events([live(b, 10)])
    assert len(world.frames) == 2 and world.link.later == [(0.25, {"type": "relay.catch_up"})]
    world.history.fail = False
    await world.session.delivery.catch_up()
    assert [f["message"] for f in world.frames[2:]] == [a, b]


async def test_subscribing_again_never_doubles_live_delivery():
    world = await subscribed()
    await world.session.handle(Command("subscribe", ref=2, channel=C))
    message = world.history.add(C, 10)
    await world.session.delivery.on_events([live(message, 0)])
    assert [f["type"] for f in world.frames] == ["welcome", "subscribed", "subscribed", "message"]


async def test_unsubscribe_ends_delivery_and_tells_the_users_other_connections():
    world = await subscribed()
    await world.session.handle(Command("unsubscribe", ref=3, channel=C))
    assert world.frames[-1] == {"type": "unsubscribed", "channel": C, "ref": 3}
    assert world.link.told == [{"type": "relay.unsubscribed", "channel": C, "generation": 2, "reason": None}]
    await world.session.delivery.on_events([live(world.history.add(C, 10), 0)])
    assert world.frames[-1]["type"] == "unsubscribed" and world.registry.subscriptions_of["u1"] == {}


async def test_a_notice_older_than_the_connections_subscription_is_ignored():
    world = await subscribed()  # generation 1
    await world.session.delivery.end(C, 0, "forbidden")
    assert C in world.session.delivery.subscribed
    await world.session.delivery.on_events([events.revoked_event(C, 1)])
    assert world.frames[-1] == {"type": "unsubscribed", "channel": C, "reason": "forbidden"}
    assert C not in world.session.delivery.subscribed


@pytest.mark.parametrize("path", ["live", "replay", "catch_up", "subscribe", "history"])
async def test_a_user_who_lost_access_gets_nothing_more_and_loses_the_subscription(path):
    world = await subscribed()
    world.policies[C] = Policy("members", frozenset({"someone"}))
    message = world.history.add(C, 10)
    if path == "live":
        await world.session.delivery.on_events([live(message, 0)])
    elif path == "replay":
        await world.session.delivery.on_events([events.replay_event(message)])
    elif path == "catch_up":
        await world.session.delivery.catch_up()
    else:
        await world.session.handle(Command(path, ref=9, channel=C))
    after = world.frames[2:]
    assert after[0] == {"type": "unsubscribed", "channel": C, "reason": "forbidden"}
    assert [f["code"] for f in after[1:]] == ([] if path in ("live", "replay", "catch_up") else ["forbidden"])
    assert world.link.told[-1]["reason"] == "forbidden" and world.registry.subscriptions_of["u1"] == {}


async def test_the_subscription_cap_is_rate_limited_without_retry_after(settings):
    settings.RELAY_MAX_SUBSCRIPTIONS_PER_USER = 1
    world = await subscribed()
    await world.session.handle(Command("subscribe", ref=5, channel="other"))
    assert world.frames[-1] == {"type": "error", "code": "rate_limited",
                                "message": "Too many subscriptions for this user.", "ref": 5}


async def test_a_client_that_does_not_read_is_closed_with_4408_and_its_frame_not_sent(settings):
    settings.RELAY_MAX_OUTGOING_BYTES = 1000
    world = await subscribed()
    world.transport.waiting = 1000  # at the limit: still sent
    await world.session.send({"type": "pong"})
    world.transport.waiting = 1001
    message = world.history.add(C, 10)
    with pytest.raises(TransportClosed):
        await world.session.delivery.on_events([live(message, 0)])
    assert world.frames[-1] == {"type": "pong"} and world.transport.closed == [4408]
    assert ("u1", C) not in world.cursors.pending  # what was not sent does not move the cursor
    with pytest.raises(TransportClosed):
        await world.session.send({"type": "pong"})
    assert world.transport.closed == [4408]  # once


async def test_release_gives_back_the_count_and_the_group():
    world = await subscribed()
    await world.session.release()
    await world.session.release()
    assert world.session.status is Status.CLOSED and world.registry.connections["u1"] == set()
    assert world.link.joined == []
