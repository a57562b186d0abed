"""The heartbeat's batched check for connections behind the history (deliver/behind.py),
against a real Redis: one read for a batch of beats, relay.catch_up only to the open
connections that are behind."""
import uuid
from types import SimpleNamespace

from messaging.deliver import behind as heartbeats
from messaging.deliver.session import Status
from messaging.state import backends
from messaging.state.history import HistoryStore


def connection(released=False, **last_by_channel):
    """A session as the check sees it: its status, subscribed channels' `last` and its
    link's inbox (`inbox`, a list)."""
    subscribed = {channel: SimpleNamespace(last=last) for channel, last in last_by_channel.items()}
    inbox = []
    return SimpleNamespace(status=Status.CLOSED if released else Status.OPEN, inbox=inbox,
                           delivery=SimpleNamespace(subscribed=subscribed), link=SimpleNamespace(put=inbox.append))


def test_only_open_connections_behind_their_channels_get_a_catch_up(relay_settings, monkeypatch):
    reads = []
    heads = HistoryStore.heads

    async def counted_heads(store, channels):
        reads.append(list(channels))
        return await heads(store, channels)

    monkeypatch.setattr(HistoryStore, "heads", counted_heads)
    a, b, empty = (f"hb-{name}-{uuid.uuid4().hex[:8]}" for name in ("a", "b", "empty"))

    async def scenario():
        store = backends.get().history
        head_a = (await store.append(a, "bobid", "Bob", "one", None)).message["ts"]
        head_b = (await store.append(b, "bobid", "Bob", "two", None)).message["ts"]
        beats = {
            "up to date": connection(**{a: head_a, b: head_b, empty: 0}),
            "behind in b": connection(**{a: head_a, b: head_b - 1}),
            "behind, closed": connection(released=True, **{a: 0}),
            "never sent": connection(**{empty: 0, a: 0}),
        }
        await heartbeats.check(beats)
        return beats

    beats = backends.run_sync(scenario)
    caught_up = {name for name, c in beats.items() if c.inbox == [{"type": "relay.catch_up"}]}
    assert caught_up == {"behind in b", "never sent"}
    assert all(len(c.inbox) <= 1 for c in beats.values())
    assert len(reads) == 1 and sorted(reads[0]) == sorted({a, b, empty})  # one read, each channel once


def test_is_behind():
    assert heartbeats.is_behind({"a": 5, "b": 7}, {"a": 5, "b": 8})
    assert not heartbeats.is_behind({"a": 5, "b": 7}, {"a": 5, "b": 7})
    assert not heartbeats.is_behind({"a": 0}, {})  # an empty channel has head 0
    assert not heartbeats.is_behind({}, {"a": 9})  # channels not subscribed do not count
