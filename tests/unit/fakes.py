"""In-memory stand-ins for what a session talks to (deliver/services.py, transport.py,
link.py), so the session core's rules run without servers: the history store, the
registry, the transport, the channel-layer link and the write-behind batches.

They keep the contracts the real ones document (ts in Unix ns, `since` exclusive, the
newest `limit` for a subscribe, generations bumped by every subscribe and unsubscribe,
the caps), not their Redis scripts: those are tested on a real Redis
(tests/integration/test_history_store.py).
"""
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import ClassVar

from messaging.deliver.inbox import Inbox
from messaging.deliver.services import Services
from messaging.deliver.session import Session
from messaging.deliver.transport import TransportClosed
from messaging.protocol.timestamps import ts_to_id
from messaging.state.access import OPEN_POLICY
from messaging.state.history import Page
from messaging.state.subscriptions import SubscriptionLimit


class FakeHistory:
    """Channels' messages in lists, oldest first; `fail` makes every read raise
    ConnectionError (Redis down)."""

    def __init__(self):
        self.channels: dict[str, list[dict]] = {}
        self.fail = False
        self.reads = 0

    def add(self, channel: str, ts: int, text: str = "x", userid: str = "bobid") -> dict:
        message = {"id": ts_to_id(ts), "channelid": channel, "userid": userid, "name": userid, "text": text, "ts": ts}
        self.channels.setdefault(channel, []).append(message)
        return message

    def _read(self, channel: str) -> list[dict]:
        self.reads += 1
        if self.fail:
            raise ConnectionError("Redis down")
        return self.channels.get(channel, [])

    async def newest_after(self, channel, since, limit):
        after = [m for m in self._read(channel) if since is None or m["ts"] > since]
        page = after[-limit:]
        return Page(page, len(after) > limit, page[-1]["ts"] if page else 0), len(after) > limit

    async def page(self, channel, *, since=None, before=None, until=None, limit=100):
        msgs = [m for m in self._read(channel) if (since is None or m["ts"] > since)
                and (before is None or m["ts"] < before)]
        chosen = msgs[:limit] if since is not None else msgs[-limit:]
        return Page(chosen, len(msgs) > limit, chosen[-1]["ts"] if chosen else 0)

    async def between(self, channel, after, upto, limit=10_000):
        return [m for m in self._read(channel) if after < m["ts"] <= upto][:limit]

    async def heads(self, channels):
        return [(self._read(c) or [{"ts": 0}])[-1]["ts"] for c in channels]


class FakeRegistry:
    """Subscriptions (user -> {channel: cursor}), generations and connection counts."""

    def __init__(self):
        self.subscriptions_of: dict[str, dict[str, int | None]] = {}
        self.generations: dict[str, int] = {}
        self.connections: dict[str, set[str]] = {}

    def _bump(self, userid: str) -> int:
        self.generations[userid] = self.generations.get(userid, 0) + 1
        return self.generations[userid]

    async def subscribe(self, userid, channel, max_subscriptions):
        subs = self.subscriptions_of.setdefault(userid, {})
        if channel not in subs:
            if len(subs) >= max_subscriptions:
                raise SubscriptionLimit()
            subs[channel] = None
        return subs[channel], self._bump(userid)

    async def unsubscribe(self, userid, channel):
        self.subscriptions_of.get(userid, {}).pop(channel, None)
        return self._bump(userid)

    async def subscriptions(self, userid):
        return [{"channel": c, "last_ts": ts} for c, ts in sorted(self.subscriptions_of.get(userid, {}).items())]

    async def open_connection(self, userid, connection_id, max_connections):
        open_ = self.connections.setdefault(userid, set())
        if len(open_) >= max_connections:
            return False
        open_.add(connection_id)
        return True

    async def close_connection(self, userid, connection_id):
        self.connections.get(userid, set()).discard(connection_id)


class FakeBatch:
    """A write-behind batch (state/writebehind.WriteBehind's note, discard, flush) that
    keeps what is noted."""

    def __init__(self):
        self.pending: dict = {}

    def note(self, key, value):
        self.pending[key] = value

    def discard(self, key):
        self.pending.pop(key, None)

    async def flush(self):
        pass


class FakeTransport:
    """Frames in `sent`, close codes in `closed`; `waiting` is its backlog (bytes)."""

    def __init__(self):
        self.sent: list[dict] = []
        self.closed: list[int] = []
        self.waiting = 0

    async def send(self, frame):
        if self.closed:
            raise TransportClosed
        self.sent.append(frame)

    async def close(self, code):
        self.closed.append(code)

    def backlog(self):
        return self.waiting


class FakeLink:
    """A layer link whose messages to the user's connections are kept in `told` and whose
    delayed inbox puts are kept in `later` (delay, message)."""

    def __init__(self):
        self.inbox = Inbox()
        self.joined: list[str] = []
        self.told: list[dict] = []
        self.later: list[tuple[float, dict]] = []

    async def join(self, userid):
        self.joined.append(userid)

    async def leave(self, userid):
        if userid in self.joined:  # as the layer's group_discard, leaving a group never joined is no error
            self.joined.remove(userid)

    async def tell_user(self, userid, message):
        self.told.append(message)

    def put(self, message):
        self.inbox.put(message)

    def put_later(self, delay_s, message):
        self.later.append((delay_s, message))


@dataclass
class World:
    """A session with every collaborator faked; `policies` maps a channel to its policy
    (OPEN_POLICY when absent), `published` keeps start_publish's calls."""

    history: FakeHistory = field(default_factory=FakeHistory)
    registry: FakeRegistry = field(default_factory=FakeRegistry)
    transport: FakeTransport = field(default_factory=FakeTransport)
    link: FakeLink = field(default_factory=FakeLink)
    cursors: FakeBatch = field(default_factory=FakeBatch)
    mirror: FakeBatch = field(default_factory=FakeBatch)
    policies: dict = field(default_factory=dict)
    published: list = field(default_factory=list)
    session: Session | None = None
    made: ClassVar[list] = []  # every World, so a test's fixture can release their sessions

    def __post_init__(self):
        async def policy_for(channel):
            return self.policies.get(channel, OPEN_POLICY)

        async def verify(token):
            return None

        async def start_publish(user, channel, text, client_id):
            self.published.append((user.id, channel, text, client_id))
            raise NotImplementedError("publish is not faked")

        services = Services(
            history=self.history, registry=self.registry, start_publish=start_publish, cursors=self.cursors,
            liveness=FakeBatch(), behind_checks=FakeBatch(), mirror=self.mirror, verify=verify,
            policy_for=policy_for, cached_policy=self.policies.get, forget_policy=lambda channel: None,
        )
        self.session = Session(self.transport, self.link, services, connection_id=f"c{len(World.made)}")
        World.made.append(self)

    @property
    def frames(self) -> list[dict]:
        return self.transport.sent


def user(userid: str = "u1", name: str = "U") -> SimpleNamespace:
    """A verified user as auth_pocketbase's verifier gives it (expires in an hour)."""
    import time

    return SimpleNamespace(id=userid, name=name, token="t", expires_at=time.time() + 3600)
