"""Connections to Redis and NATS, one set per asyncio event loop (I/O at the edge).

daphne serves everything on one loop; management commands and tests run their own.
`get()` hands out the set of the running loop; clients reconnect by themselves when a
server returns (redis-py per command, nats-py with unlimited reconnect attempts), so
the relay recovers from an outage without a restart. While a server is down, the
calls that need it raise errors.Unavailable. The history store and the subscription
registry of a loop are made once, with its Redis client (`history`, `registry`).
"""
import asyncio
import logging
import time
import weakref

import nats
import redis.asyncio as aioredis
from django.conf import settings
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from messaging.fanout.stream import ensure_stream
from messaging.protocol.errors import Unavailable
from messaging.publish.jetstream import PipelinedPublisher
from messaging.state.history import HistoryStore
from messaging.state.subscriptions import Registry

log = logging.getLogger(__name__)

REDIS_ERRORS = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)
CONNECT_RETRY_SECONDS = 1.0  # at most one new NATS connection attempt per second per loop
FIRST_CONNECT_TIMEOUT_S = 3.0
REDIS_POOL_SIZE = 200


class Backends:
    """The Redis client and the (lazily connected) NATS client of one event loop, with
    the history store (`history`, limits from settings) and the subscription registry
    (`registry`) on that Redis client."""

    def __init__(self, redis_url: str, nats_url: str):
        # A blocking pool: under a burst, commands wait (up to 5 s) for one of
        # REDIS_POOL_SIZE connections instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            max_connections=REDIS_POOL_SIZE,
            timeout=5,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=10,  # a busy event loop reads late; a dead server is seen by connect
            health_check_interval=10,
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        self.history = HistoryStore(
            self.redis, maxlen=settings.RELAY_HISTORY_MAXLEN, max_age_s=settings.RELAY_HISTORY_MAX_AGE,
            rate=settings.RELAY_PUBLISH_RATE, burst=settings.RELAY_PUBLISH_BURST,
        )
        self.registry = Registry(self.redis)
        self.nats_url = nats_url
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._publisher: PipelinedPublisher | None = None
        self._lock = asyncio.Lock()
        self._last_attempt = 0.0

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context, connecting first if needed.

        Raises Unavailable when NATS is not connected (down, or reconnecting).
        """
        if self._nc is not None and self._nc.is_connected:
            return self._js
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                if time.monotonic() - self._last_attempt < CONNECT_RETRY_SECONDS:
                    raise Unavailable("NATS")
                self._last_attempt = time.monotonic()
                try:
                    # nats-py keeps retrying a first connection: bound it ourselves.
                    self._nc = await asyncio.wait_for(connect_nats(self.nats_url), FIRST_CONNECT_TIMEOUT_S)
                except Exception as exc:  # nats-py raises several unrelated types here
                    log.warning("NATS connection failed: %s", exc)
                    raise Unavailable("NATS") from exc
                self._js = self._nc.jetstream()
                self._publisher = PipelinedPublisher(self._nc)
                try:
                    await ensure_stream(self._js)
                except Exception as exc:  # no JetStream leader yet, timeouts: try again next call
                    log.warning("JetStream stream setup failed: %r", exc)
                    nc, self._nc = self._nc, None
                    await nc.close()
                    raise Unavailable("NATS JetStream") from exc
        if not self._nc.is_connected:
            raise Unavailable("NATS")
        return self._js

    async def publisher(self) -> PipelinedPublisher:
        """The JetStream publisher of the connection (jetstream.start_fan_out), connecting
        first if needed. Raises Unavailable like jetstream()."""
        await self.jetstream()
        return self._publisher

    @property
    def nats_status(self) -> str:
        """'ok' when NATS is connected, else a short reason (for /readyz)."""
        if self._nc is None:
            return "not connected"
        if self._nc.is_connected:
            return "ok"
        return "reconnecting" if self._nc.is_reconnecting else "disconnected"

    async def close(self):
        """Close both clients (drains NATS)."""
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()
        await self.redis.aclose()


async def connect_nats(url: str, **options) -> NATS:
    """A nats-py client that never gives up reconnecting once connected, and whose
    publishes wait at most jetstream.PUBLISH_TIMEOUT_S seconds for room in its full
    outgoing buffer (nats-py's `flush_timeout`; without it they wait for as long as NATS
    is stopped with its TCP connection open;
    test_fan_outs_to_a_stopped_nats_end_in_unavailable_when_its_buffer_is_full).
    `options` override nats.connect's arguments. Raises whatever nats-py raises when the
    first connection fails (server down).
    """
    from messaging.publish import jetstream  # read at call time (tests shorten it)

    async def on_error(exc):
        log.warning("NATS: %s", exc)

    settings_ = {"connect_timeout": 2, "reconnect_time_wait": 0.5, "max_reconnect_attempts": -1, "error_cb": on_error,
                 "flush_timeout": jetstream.PUBLISH_TIMEOUT_S}
    return await nats.connect(nats_servers(url), **{**settings_, **options})


def nats_servers(url: str) -> list[str]:
    """NATS_URL as a server list: 'nats://a:4222,nats://b:4222' names a cluster's nodes."""
    return [part.strip() for part in url.split(",") if part.strip()]


_per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Backends]" = weakref.WeakKeyDictionary()


async def release() -> None:
    """Close and forget the running loop's Backends (commands call this before exiting)."""
    backends = _per_loop.pop(asyncio.get_running_loop(), None)
    if backends is not None:
        await backends.close()


def run_sync(coroutine_function, *args):
    """Call an async function from sync code (commands, admin views: threads without a
    running loop) on a private event loop, closing that loop's connections afterwards.
    Never touches daphne's own loop or its connections. Exceptions propagate."""

    async def call():
        try:
            return await coroutine_function(*args)
        finally:
            await release()

    return asyncio.run(call())


def get() -> Backends:
    """The Backends of the running event loop, created on first use from settings."""
    loop = asyncio.get_running_loop()
    backends = _per_loop.get(loop)
    if backends is None:
        backends = _per_loop[loop] = Backends(settings.REDIS_URL, settings.NATS_URL)
    return backends
