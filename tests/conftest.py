"""Shared fixtures: real Redis, NATS (JetStream) and PocketBase servers on free
loopback ports in a session temp dir, PocketBase users, and the relay itself as
real processes (daphne + workers). Nothing here touches a developer's servers
(6379, 4222, 8090) or data. See localservers/ for the server objects.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from dataclasses import dataclass, field

import pytest

from localservers import NatsServer, PocketBase, PocketBaseServer, RedisServer
from localservers.relay import Relay

_SESSION_SERVERS: list = []
_RELAYS: list[Relay] = []


# -- servers ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory):
    """Session temp dir holding every server's data dir and log."""
    return tmp_path_factory.mktemp("servers")


def _serve(server):
    server.start()
    _SESSION_SERVERS.append(server)
    try:
        yield server
    finally:
        _SESSION_SERVERS.remove(server)
        server.stop()


@pytest.fixture(scope="session")
def redis_server(servers_dir):
    """A session :class:`RedisServer` (``.url`` = ``redis://127.0.0.1:P/0``)."""
    yield from _serve(RedisServer(servers_dir / "redis"))


@pytest.fixture(scope="session")
def nats_server(servers_dir):
    """A session :class:`NatsServer` with JetStream (``.url`` = ``nats://127.0.0.1:P``)."""
    yield from _serve(NatsServer(servers_dir / "nats"))


@pytest.fixture(scope="session")
def pocketbase_server(servers_dir):
    """A session :class:`PocketBaseServer` (``.url`` = ``http://127.0.0.1:P``,
    ``.api`` = superuser :class:`PocketBase` client)."""
    yield from _serve(PocketBaseServer(servers_dir / "pocketbase"))


@pytest.fixture(scope="session")
def pb_admin(pocketbase_server) -> PocketBase:
    """The superuser PocketBase client of the session PocketBase."""
    return pocketbase_server.api


@pytest.fixture(autouse=True)
def _revive_session_servers():
    """After each test, start again any session server the test stopped or killed
    and did not restart, so one failed recovery test does not break the rest."""
    yield
    for server in list(_SESSION_SERVERS):
        if not server.running():
            server.start()


# -- PocketBase users ------------------------------------------------------------------
@dataclass
class PBUser:
    """A PocketBase ``users`` record with a fresh token."""

    id: str
    email: str
    password: str
    name: str
    token: str
    record: dict = field(repr=False)
    api: PocketBase = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``."""
        return {"Authorization": f"Bearer {self.token}"}

    def login(self) -> str:
        """Log in again; stores and returns the new token."""
        self.token, self.record = self.api.login(self.email, self.password)
        return self.token


@pytest.fixture(scope="session")
def pb_user(pb_admin):
    """Factory: ``make_user(name="alice", password=None) -> PBUser`` creates a new
    unique user (email ``<name>-<hex>@example.com``) and logs it in."""

    def make_user(name: str = "alice", password: str | None = None) -> PBUser:
        email = f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.com"
        password = password or secrets.token_urlsafe(16)
        record = pb_admin.create_user(email, password, name)
        token, record = pb_admin.login(email, password)
        return PBUser(record["id"], email, password, name, token, record, pb_admin)

    return make_user


# -- Django settings for in-process tests ----------------------------------------------
@pytest.fixture
def relay_settings(settings, redis_server, nats_server, pocketbase_server):
    """pytest-django ``settings`` pointed at the fixture servers: REDIS_URL, NATS_URL,
    POCKETBASE_URL (with a superuser token as POCKETBASE_SUPERUSER_TOKEN), the
    channels_redis layer's hosts and the Redis cache (the page's login and sign-up
    throttles); the publish rate off (RELAY_PUBLISH_RATE=0, as RELAY_TEST_DEFAULTS has it
    for the relay's processes: tests share one Redis and one sender's bucket). Restored
    after the test."""
    settings.REDIS_URL = redis_server.url
    settings.RELAY_PUBLISH_RATE = 0
    settings.CACHES = {alias: dict(cache, LOCATION=redis_server.url) for alias, cache in settings.CACHES.items()}
    settings.NATS_URL = nats_server.url
    settings.POCKETBASE_URL = pocketbase_server.url
    settings.POCKETBASE_SUPERUSER_TOKEN = pocketbase_server.api.superuser_token()
    layers = copy.deepcopy(getattr(settings, "CHANNEL_LAYERS", None) or {})
    for layer in layers.values():
        if "channels_redis" in layer.get("BACKEND", ""):
            hosts = layer.setdefault("CONFIG", {}).get("hosts") or [redis_server.url]
            layer["CONFIG"]["hosts"] = [dict(h, address=redis_server.url) if isinstance(h, dict) else redis_server.url
                                        for h in hosts]
    if layers:
        settings.CHANNEL_LAYERS = layers
    return settings


# -- the relay as real processes -------------------------------------------------------
@pytest.fixture(scope="module")
def relay_env():
    """RELAY_* (or other) env overrides for this module's ``relay``; override this
    fixture in a test module to change them. Merged over the defaults below."""
    return {}


RELAY_TEST_DEFAULTS = {"RELAY_PUBLISH_RATE": "0", "RELAY_AUTH_CACHE_SECONDS": "2"}


@pytest.fixture(scope="session")
def relay_factory(redis_server, nats_server, pocketbase_server, tmp_path_factory):
    """Factory: ``make_relay(env=None, workers=2) -> Relay`` started on the session
    servers in a fresh temp dir (own SQLite db), with a superuser token of the session
    PocketBase as POCKETBASE_SUPERUSER_TOKEN (manage.py channel checks members). Stopped at the end of the session
    (or call ``.stop()`` yourself)."""
    made: list[Relay] = []

    def make_relay(env: dict[str, str] | None = None, workers: int = 2) -> Relay:
        base_env = {"REDIS_URL": redis_server.url, "NATS_URL": nats_server.url,
                    "POCKETBASE_URL": pocketbase_server.url,
                    "POCKETBASE_SUPERUSER_TOKEN": pocketbase_server.api.superuser_token(),
                    **RELAY_TEST_DEFAULTS}
        relay = Relay(tmp_path_factory.mktemp("relay"), {**base_env, **(env or {})},
                      workers=workers)
        made.append(relay)
        _RELAYS.append(relay)
        try:
            relay.start()
        except BaseException:
            relay.stop()
            raise
        return relay

    yield make_relay
    for relay in made:
        relay.stop()
        _RELAYS.remove(relay)


@pytest.fixture(scope="module")
def relay(relay_factory, relay_env):
    """The relay for this module: one daphne + two workers on the session servers.
    Attributes: ``http_url``, ``ws_url``, ``env``, ``web``, ``webs``, ``workers``;
    methods ``start_worker()``, ``start_web()``, ``restart_web()``, ``manage(...)``,
    ``logs()``. Env: RELAY_PUBLISH_RATE=0, RELAY_AUTH_CACHE_SECONDS=2 unless
    ``relay_env`` says otherwise."""
    instance = relay_factory(env=relay_env)
    yield instance
    instance.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the tails of the running relays' logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _RELAYS:
        for relay in _RELAYS:
            if any(p.running() for p in [*relay.webs, *relay.workers]):
                report.sections.append((f"relay logs ({relay.base_dir})", relay.logs()))
