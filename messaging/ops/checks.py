"""`relay_check`: what is wrong with the relay's servers and settings, precisely.

Each check returns Findings: (level, component, sentence), level "ok", "warning" or
"error". Only errors make `relay_check` fail.
"""
import asyncio
from dataclasses import dataclass

import redis.asyncio as aioredis
import requests
from django.conf import settings
from nats.js import api
from nats.js.errors import NotFoundError

from auth_pocketbase.client import PocketBaseClient, PocketBaseRefused, PocketBaseUnavailable, superuser_refusal
from auth_pocketbase.users import NotUsers, superuser_token
from messaging.fanout.stream import QUEUE_GROUP, STREAM, SUBJECTS
from messaging.state.backends import connect_nats


@dataclass(frozen=True)
class Finding:
    level: str  # "ok" | "warning" | "error"
    component: str
    message: str


def check_settings() -> list[Finding]:
    """Settings that are unsafe or out of range."""
    found = []
    if not settings.DEBUG and settings.SECRET_KEY.startswith("django-insecure-"):
        found.append(Finding("error", "settings", "DJANGO_SECRET_KEY is not set: the development key is in use with DEBUG off."))
    if settings.DEBUG:
        found.append(Finding("warning", "settings", "DJANGO_DEBUG is on: never in production."))
    if not settings.ALLOWED_HOSTS:
        found.append(Finding("error", "settings", "DJANGO_ALLOWED_HOSTS is empty: every request and WebSocket Origin is refused."))
    minimums = {
        "RELAY_MAX_MESSAGE_CHARS": 1, "RELAY_PUBLISH_RATE": 0, "RELAY_PUBLISH_BURST": 1, "RELAY_HISTORY_MAXLEN": 1,
        "RELAY_HISTORY_MAX_AGE": 1, "RELAY_AUTH_CACHE_SECONDS": 0, "RELAY_MAX_SUBSCRIPTIONS_PER_USER": 1,
        "RELAY_MAX_CONNECTIONS_PER_USER": 1, "RELAY_WORKER_ACK_WAIT": 1, "RELAY_EVENTS_MAX_BYTES": 2**20,
    }
    for name, minimum in minimums.items():
        if getattr(settings, name) < minimum:
            found.append(Finding("error", "settings", f"{name} is {getattr(settings, name)}; it must be at least {minimum}."))
    if settings.RELAY_EVENTS_MAX_BYTES >= 2**63:
        found.append(Finding("error", "settings", f"RELAY_EVENTS_MAX_BYTES is {settings.RELAY_EVENTS_MAX_BYTES}; "
                             "NATS takes at most 9223372036854775807."))
    if settings.RELAY_PUBLISH_RATE == 0:
        found.append(Finding("warning", "settings", "RELAY_PUBLISH_RATE is 0: publishing is not rate limited."))
    if not any(f.level == "error" for f in found):
        found.append(Finding("ok", "settings", "limits and security settings are sound."))
    return found


async def check_redis(url: str) -> list[Finding]:
    """Redis answers, is 6.2 or newer (Streams features used), and keeps data on restart."""
    client = aioredis.from_url(url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5)
    try:
        info = await client.info("server")
        version = info.get("redis_version", "0")
        if tuple(int(x) for x in version.split(".")[:2]) < (6, 2):
            return [Finding("error", "redis", f"Redis {version} at {url} is too old: 6.2 or newer is needed (XADD MINID, exclusive XRANGE).")]
        found = [Finding("ok", "redis", f"Redis {version} answers at {url}.")]
        try:
            config = await client.config_get("appendonly")
            config.update(await client.config_get("save"))
            if config.get("appendonly") == "no" and not config.get("save"):
                found.append(Finding("warning", "redis", "Redis persists nothing (appendonly no, no save points): history is lost when it restarts."))
        except aioredis.ResponseError:
            pass  # CONFIG is disabled on some managed Redis services
        return found
    except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
        return [Finding("error", "redis", f"cannot reach Redis at {url}: {exc}")]
    finally:
        await client.aclose()


async def check_nats(url: str) -> list[Finding]:
    """NATS answers with JetStream enabled; the EVENTS stream and the `relay` consumer."""
    async def quiet(exc):
        pass

    try:
        nc = await asyncio.wait_for(connect_nats(url, error_cb=quiet), 5)
    except asyncio.TimeoutError:
        return [Finding("error", "nats", f"cannot reach NATS at {url}: no answer within 5 s.")]
    except Exception as exc:  # nats-py raises several unrelated types
        return [Finding("error", "nats", f"cannot reach NATS at {url}: {exc!r}")]
    try:
        js = nc.jetstream()
        try:
            await js.account_info()
        except Exception as exc:
            return [Finding("error", "nats", f"NATS at {url} answers but JetStream is not enabled (start it with -js): {exc!r}")]
        found = [Finding("ok", "nats", f"NATS with JetStream answers at {url}.")]
        try:
            stream = await js.stream_info(STREAM)
        except NotFoundError:
            return found + [Finding("warning", "nats", f"stream {STREAM} does not exist yet; the relay creates it on first use.")]
        if stream.config.subjects != SUBJECTS:
            found.append(Finding("error", "nats", f"stream {STREAM} has subjects {stream.config.subjects}, expected {SUBJECTS}."))
        if stream.config.retention == api.RetentionPolicy.WORK_QUEUE:
            found.append(Finding("warning", "nats", f"stream {STREAM} has work-queue retention (made by an earlier relay): "
                                 "it works, at more NATS CPU per event; see docs/deploy.md to recreate it."))
        if stream.config.max_bytes != settings.RELAY_EVENTS_MAX_BYTES:
            found.append(Finding("warning", "nats", f"stream {STREAM} keeps at most {stream.config.max_bytes} bytes, but "
                                 f"RELAY_EVENTS_MAX_BYTES is {settings.RELAY_EVENTS_MAX_BYTES}, which applies only when the "
                                 f"relay creates the stream: `nats stream edit {STREAM} --max-bytes "
                                 f"{settings.RELAY_EVENTS_MAX_BYTES}`."))
        try:
            consumer = await js.consumer_info(STREAM, QUEUE_GROUP)
            found.append(Finding("ok", "nats", f"stream {STREAM}: {stream.state.messages} events kept; consumer "
                                 f"{QUEUE_GROUP}: {consumer.num_pending} waiting, {consumer.num_ack_pending} awaiting ack."))
        except NotFoundError:
            found.append(Finding("warning", "nats", f"consumer {QUEUE_GROUP} does not exist: no relay_worker has run yet, or "
                                 "it was deleted (running workers do not make it again: restart them)."))
        return found
    finally:
        await nc.close()


def check_pocketbase(url: str) -> list[Finding]:
    """PocketBase answers and has the `users` auth collection."""
    try:
        health = requests.get(f"{url}/api/health", timeout=5)
        methods = requests.get(f"{url}/api/collections/users/auth-methods", timeout=5)
    except requests.RequestException as exc:
        return [Finding("error", "pocketbase", f"cannot reach PocketBase at {url}: {exc}")]
    if health.status_code != 200:
        return [Finding("error", "pocketbase", f"PocketBase at {url} answers /api/health with HTTP {health.status_code}.")]
    if methods.status_code != 200:
        return [Finding("error", "pocketbase", f"PocketBase at {url} has no 'users' auth collection (HTTP {methods.status_code}).")]
    if not methods.json().get("password", {}).get("enabled", True):
        return [Finding("error", "pocketbase", "the 'users' collection does not allow password login.")]
    return [Finding("ok", "pocketbase", f"PocketBase answers at {url} with the 'users' collection."),
            check_superuser_token(url)]


def check_superuser_token(url: str) -> Finding:
    """POCKETBASE_SUPERUSER_TOKEN (or _FILE), which adding channel members needs
    (command and admin), is a superuser's token that PocketBase accepts."""
    try:
        token = superuser_token()
    except NotUsers as exc:
        return Finding("error", "pocketbase", f"{exc}.")
    if not token:
        return Finding("warning", "pocketbase", "POCKETBASE_SUPERUSER_TOKEN is not set: "
                       "`manage.py channel --add-member` and the admin cannot check new members and refuse them.")
    try:
        PocketBaseClient(url).users_collection(token)
    except PocketBaseUnavailable as exc:
        return Finding("error", "pocketbase", f"PocketBase at {url} did not answer the POCKETBASE_SUPERUSER_TOKEN check ({exc}).")
    except PocketBaseRefused as exc:
        return Finding("error", "pocketbase", f"PocketBase at {url} {superuser_refusal(exc, 'POCKETBASE_SUPERUSER_TOKEN')}.")
    return Finding("ok", "pocketbase", "POCKETBASE_SUPERUSER_TOKEN is a superuser token.")


async def run_all() -> list[Finding]:
    """Every check, the servers in parallel."""
    redis, nats, pocketbase = await asyncio.gather(
        check_redis(settings.REDIS_URL), check_nats(settings.NATS_URL),
        asyncio.to_thread(check_pocketbase, settings.POCKETBASE_URL),
    )
    return check_settings() + redis + nats + pocketbase
