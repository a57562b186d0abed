"""Channels middleware that authenticates WebSocket handshakes with PocketBase.

It puts `scope["relay_auth"]`, an AuthResult, in the scope: the verified user, or the
error code the consumer must answer with (`unauthorized` -> close 4401, `unavailable`
-> close 4503). The consumer accepts first and then closes, as PROTOCOL.md asks, so
the client sees the reason.
"""
import logging
from dataclasses import dataclass
from importlib import import_module

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings

from . import failures
from .client import PocketBaseUnavailable, PocketBaseUser
from .credentials import (
    SESSION_TOKEN_KEY,
    BadCredential,
    Credential,
    header_values,
    token_from_authorization,
    token_from_query,
)
from .verification import Unauthorized, get_verifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthResult:
    """The verified `user`, or `error` ('unauthorized' | 'unavailable') with `reason`."""

    user: PocketBaseUser | None = None
    error: str | None = None
    reason: str = ""


def _session_token(session) -> str | None:
    return session.get(SESSION_TOKEN_KEY) if session is not None else None


async def find_credential(scope) -> Credential | None:
    """The credential that decides for this handshake (see credentials.py), or None.

    Raises BadCredential when the deciding one is malformed, or when only a session
    cookie is present on a handshake without `Origin` (never enough on its own).
    """
    headers = scope.get("headers", [])
    token = token_from_authorization(header_values(headers, b"authorization"))
    if token is not None:
        return Credential(token, "header")
    token = token_from_query(scope.get("query_string", b""))
    if token is not None:
        return Credential(token, "query")
    token = await database_sync_to_async(_session_token)(scope.get("session"))
    if token is None:
        return None
    if not header_values(headers, b"origin"):
        raise BadCredential("A session cookie alone is not accepted without an Origin header.")
    return Credential(token, "session")


async def authenticate(scope) -> AuthResult:
    """Verify the handshake's credential with PocketBase (cached), counting failures
    (failures.py); never raises."""
    try:
        with failures.counted():
            credential = await find_credential(scope)
            if credential is None:
                raise Unauthorized("Log in first: send 'Authorization: Bearer <token>'.")
            user = await get_verifier().verify(credential.token)
    except (BadCredential, Unauthorized) as exc:
        return AuthResult(error="unauthorized", reason=str(exc))
    except PocketBaseUnavailable as exc:
        log.warning("PocketBase unavailable while verifying a token: %s", exc)
        return AuthResult(error="unavailable", reason="PocketBase is unavailable; try again shortly.")
    return AuthResult(user=user)


class PocketBaseAuthMiddleware(BaseMiddleware):
    """Sets scope['relay_auth'] (AuthResult) for the inner application."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope, relay_auth=await authenticate(scope))
        return await super().__call__(scope, receive, send)


class HandshakeSessionMiddleware(BaseMiddleware):
    """Sets scope['session']: the Django session named by the handshake's session
    cookie, to read (the page's logged-in user's token). Needs CookieMiddleware outside.

    channels' SessionMiddleware would also wrap `send` to save a modified session and
    set its cookie on every message sent; a WebSocket connection never writes its
    session (the page's views do), so here frames go straight to daphne, one layer
    less per delivered frame (measured with the benchmark, docs/performance.md).
    """

    def __init__(self, inner):
        super().__init__(inner)
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore  # as channels' SessionMiddleware

    async def __call__(self, scope, receive, send):
        session = self.session_store(session_key=scope["cookies"].get(settings.SESSION_COOKIE_NAME))  # read lazily
        return await super().__call__(dict(scope, session=session), receive, send)


def PocketBaseAuthMiddlewareStack(inner):
    """Cookies and the handshake's session (for the page's logged-in users) around PocketBase auth."""
    return CookieMiddleware(HandshakeSessionMiddleware(PocketBaseAuthMiddleware(inner)))
