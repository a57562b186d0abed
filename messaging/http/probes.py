"""/readyz's checks (PROTOCOL.md "HTTP API"): one round trip to each server, on this
process's own connections, each within READY_TIMEOUT_S.

A connection being open proves nothing: a server that is stopped (SIGSTOP), wedged or
cut off behind a firewall that drops packets keeps its TCP connections open, and the
kernel still accepts new ones, but nothing answers. So each check waits for an answer
(Redis PING, a JetStream account info request, PocketBase's /api/health), and a check
without one within the bound reads as not ready instead of hanging the probe.
"""
import asyncio

from django.conf import settings
from nats.errors import Error as NatsError

from auth_pocketbase.client import PocketBaseClient
from messaging.protocol.errors import Unavailable
from messaging.state.backends import REDIS_ERRORS, Backends

READY_TIMEOUT_S = 2.0


async def within(check, seconds: float = READY_TIMEOUT_S) -> str:
    """The result of awaiting `check` (a coroutine giving "ok" or a reason), or
    "no answer within <seconds> s" when it takes longer (it is then cancelled)."""
    try:
        return await asyncio.wait_for(check, seconds)
    except asyncio.TimeoutError:
        return f"no answer within {seconds:g} s"


async def check_redis(be: Backends) -> str:
    """PING on the process's Redis pool: "ok", or the error's class name."""
    try:
        await be.redis.ping()
        return "ok"
    except REDIS_ERRORS as exc:
        return type(exc).__name__


async def check_nats(be: Backends) -> str:
    """A JetStream account info request on the process's NATS connection (connecting
    first if needed): "ok", the connection's state when it is not connected, or the
    error's class name."""
    try:
        # Shielded: a first connection cut short by the bound goes on, so the next
        # probe finds it made (and the stream ensured) instead of starting over.
        js = await asyncio.shield(be.jetstream())
        await js.account_info()
        return "ok"
    except Unavailable:
        return be.nats_status
    except NatsError as exc:
        return type(exc).__name__


async def readiness(be: Backends) -> dict[str, str]:
    """{"redis", "nats", "pocketbase"} -> "ok" or why not, the three checked at once,
    within READY_TIMEOUT_S in all."""
    # PocketBase's GET /api/health runs in a thread with requests' own timeout longer
    # than the bound: the bound decides the answer, and the thread ends soon after it.
    pocketbase = asyncio.to_thread(PocketBaseClient(settings.POCKETBASE_URL).healthy, 2 * READY_TIMEOUT_S)
    redis, nats, pb = await asyncio.gather(within(check_redis(be)), within(check_nats(be)), within(pocketbase))
    return {"redis": redis, "nats": nats, "pocketbase": pb}
