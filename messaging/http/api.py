"""The HTTP API (PROTOCOL.md "HTTP API"): JSON in, JSON out, the same rules as the socket.

Auth: `Authorization: Bearer <token>` (or bare), or the page's Django session, which
then needs CSRF protection on writes. Errors: {"error": {"code", "message"}}.
"""
import functools
import logging

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from auth_pocketbase import failures
from auth_pocketbase.client import PocketBaseUnavailable
from auth_pocketbase.credentials import SESSION_TOKEN_KEY, BadCredential, token_from_authorization
from auth_pocketbase.verification import Unauthorized, get_verifier
from messaging import metrics
from messaging.http import probes
from messaging.models import Channel
from messaging.ops import inspection
from messaging.protocol.errors import RelayError, Unavailable
from messaging.protocol.frames import decode
from messaging.protocol.limits import DEFAULT_LIMIT, MAX_FRAME_BYTES
from messaging.protocol.validation import (
    is_valid_id,
    paging_from_query,
    validate_channel,
    validate_client_id,
    validate_text,
)
from messaging.publish import publish as publishing
from messaging.state import access, backends
from messaging.state.backends import REDIS_ERRORS

log = logging.getLogger(__name__)


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """An HttpResponse of `body` encoded with orjson (application/json)."""
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(error: RelayError) -> HttpResponse:
    """PROTOCOL.md's HTTP error body `{"error": {"code", "message"}}` with the error's
    status, plus `Retry-After` (whole seconds, rounded up, at least 1) for rate limits.
    """
    headers = None
    if error.retry_after is not None:
        headers = {"Retry-After": str(max(1, int(-(-error.retry_after // 1))))}
    return json_response({"error": {"code": error.code, "message": error.message}}, error.http_status, headers)


def _session_token(request):
    return request.session.get(SESSION_TOKEN_KEY)


def _csrf_failure(request) -> bool:
    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is not None


async def authenticate(request):
    """The verified PocketBase user of a request (header token, else session).

    Raises RelayError: unauthorized (no or bad credential; session writes without a
    valid CSRF token) or unavailable (PocketBase down); both are counted in
    relay_auth_failures_total (auth_pocketbase/failures.py).
    """
    try:
        with failures.counted():
            token = token_from_authorization([request.headers["Authorization"]] if "Authorization" in request.headers else [])
            if token is None:
                token = await sync_to_async(_session_token)(request)
                if token is None:
                    raise Unauthorized("Log in first: send 'Authorization: Bearer <token>'.")
                if request.method not in ("GET", "HEAD", "OPTIONS") and await sync_to_async(_csrf_failure)(request):
                    raise Unauthorized("CSRF verification failed for a session-authenticated write.")
            return await get_verifier().verify(token)
    except (BadCredential, Unauthorized) as exc:
        raise RelayError("unauthorized", str(exc)) from exc
    except PocketBaseUnavailable as exc:
        raise Unavailable("PocketBase") from exc


def api_view(methods):
    """Decorate an async view(request, user, **kwargs) -> dict | HttpResponse: method
    check, auth, and RelayError / backend errors turned into PROTOCOL.md error bodies."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        async def wrapper(request, **kwargs):
            if request.method not in methods:
                return json_response(
                    {"error": {"code": "bad_request", "message": f"Use {' or '.join(methods)}."}}, 405
                )
            try:
                user = await authenticate(request)
                return await view(request, user, **kwargs)
            except RelayError as error:
                return error_response(error)
            except REDIS_ERRORS:
                return error_response(Unavailable("Redis"))

        return wrapper

    return decorate


def read_json_body(request) -> dict:
    """The request body as a JSON object; RelayError too_large (over 64 KiB) or bad_request."""
    too_large = RelayError("too_large", f"Request bodies are limited to {MAX_FRAME_BYTES} bytes.")
    try:
        if int(request.headers.get("Content-Length") or 0) > MAX_FRAME_BYTES or len(request.body) > MAX_FRAME_BYTES:
            raise too_large
    except (RequestDataTooBig, ValueError):
        raise too_large from None
    body = decode(request.body, code="bad_request")
    if not isinstance(body, dict):
        raise RelayError("bad_request", "The body must be a JSON object.")
    return body


@api_view(["GET", "POST"])
async def channel_messages(request, user, channel: str):
    """POST: publish {"text", "client_id"?} -> 201 {"message"} (200 for a repeat);
    GET: ?since=&before=&limit= -> 200 {"messages": [...oldest first], "more"}."""
    validate_channel(channel)
    if request.method == "POST":
        body = read_json_body(request)
        text = validate_text(body.get("text"), settings.RELAY_MAX_MESSAGE_CHARS)
        client_id = validate_client_id(body.get("client_id"), code="bad_request")
        message, created = await publishing.publish(user, channel, text, client_id)
        return json_response({"message": message}, 201 if created else 200)
    since = paging_from_query("since", request.GET.get("since"))
    before = paging_from_query("before", request.GET.get("before"))
    limit = paging_from_query("limit", request.GET.get("limit"))
    await access.check_read(channel, user.id)
    store = backends.get().history
    page = await store.page(channel, since=since, before=before, limit=limit or DEFAULT_LIMIT)
    return json_response({"messages": page.messages, "more": page.more})


@api_view(["GET"])
async def channel_list(request, user):
    """?after=<channel>&limit=N -> 200 {"channels": [{"channel", "access", "messages",
    "last_ts", "subscribers"}], "more"}: the recorded channels the caller may read, by
    name, the first `limit` (default 100, at most 1000) after `after`. Raises
    RelayError(bad_request) for a bad `after` or `limit`."""
    after = request.GET.get("after")
    if after is not None and not is_valid_id(after):
        raise RelayError("bad_request", "'after' must be a channel name (1 to 64 of A-Z a-z 0-9 _ -).")
    limit = paging_from_query("limit", request.GET.get("limit")) or DEFAULT_LIMIT
    rows = await sync_to_async(readable_page)(user.id, after, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    stats = await inspection.channel_stats([name for name, _ in rows])
    return json_response({"channels": [
        {"channel": name, "access": access_mode, "messages": stats[name].messages,
         "last_ts": stats[name].last_ts, "subscribers": stats[name].subscribers}
        for name, access_mode in rows
    ], "more": more})


def readable_page(userid: str, after: str | None, count: int) -> list[tuple[str, str]]:
    """(name, access) of the first `count` channels by name after `after` that `userid`
    may read (sync, one query)."""
    channels = Channel.objects.readable_by(userid).order_by("name")
    if after is not None:
        channels = channels.filter(name__gt=after)
    return list(channels.values_list("name", "access")[:count])


async def healthz(request):
    """200 {"status": "ok"} while the process serves; no auth."""
    return json_response({"status": "ok"})


async def readyz(request):
    """200 when Redis, NATS and PocketBase each answered a round trip within
    probes.READY_TIMEOUT_S, else 503 with each check's reason."""
    checks = await probes.readiness(backends.get())
    if all(v == "ok" for v in checks.values()):
        return json_response({"status": "ok", "checks": checks})
    return json_response({"status": "unavailable", "checks": checks}, 503)


async def metrics_view(request):
    """This daphne process's metrics (metrics.WEB) in Prometheus text format; Bearer
    RELAY_METRICS_TOKEN required when that is set."""
    expected = settings.RELAY_METRICS_TOKEN
    if expected and request.headers.get("Authorization", "") != f"Bearer {expected}":
        return error_response(RelayError("unauthorized", "Send 'Authorization: Bearer <metrics token>'."))
    return HttpResponse(generate_latest(metrics.WEB), content_type=CONTENT_TYPE_LATEST)
