"""Token verification against PocketBase, with a per-process cache.

A token is verified with PocketBase's auth-refresh; the answer is cached for
RELAY_AUTH_CACHE_SECONDS. Only the token's own `exp` claim is read locally (unverified,
just to close connections when it passes); PocketBase decides validity.
"""
import asyncio
import re
import time

import jwt
from cachetools import TTLCache
from django.conf import settings

from .client import COLLECTION, PocketBaseClient, PocketBaseRefused, PocketBaseUnavailable, PocketBaseUser

# A user id becomes one NATS subject token (`events.<user>`) and one Redis key part: the
# same alphabet as channel ids (PROTOCOL.md "Words"), which PocketBase's record ids
# (15 of a-z 0-9 by default) keep to.
_USER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


class Unauthorized(Exception):
    """The token is missing, malformed, invalid, expired or revoked."""


def token_expiry(token: str) -> float:
    """The `exp` claim (Unix seconds) of a JWT, read without checking its signature.

    Raises Unauthorized when the token is not a JWT with a numeric `exp`.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return float(claims["exp"])
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError) as exc:
        raise Unauthorized("The token is not a PocketBase token.") from exc


def user_from_record(record: dict, token: str) -> PocketBaseUser:
    """A PocketBaseUser from an auth-refresh record; Unauthorized unless it is a valid
    `users` record whose id can be used as a NATS subject token."""
    if record.get("collectionName") != COLLECTION or not (isinstance(record.get("id"), str) and _USER_ID.fullmatch(record["id"])):
        raise Unauthorized("The token does not belong to a user of the 'users' collection.")
    name = record.get("name") or record.get("username") or record.get("email", "").split("@")[0]
    return PocketBaseUser(record["id"], str(name), record.get("email", ""), token, token_expiry(token))


class TokenVerifier:
    """Verifies tokens with PocketBase and caches good answers for `ttl` seconds."""

    def __init__(self, client: PocketBaseClient, ttl: float):
        self.client = client
        self.ttl = ttl
        self._cache: TTLCache = TTLCache(maxsize=50_000, ttl=max(ttl, 0.001))

    def _cached(self, token: str) -> PocketBaseUser | None:
        user = self._cache.get(token)
        if user is not None and user.expires_at <= time.time():
            raise Unauthorized("The token has expired.")
        return user

    def verify_sync(self, token: str) -> PocketBaseUser:
        """Verify (blocking). Raises Unauthorized, or PocketBaseUnavailable when
        PocketBase does not answer."""
        user = self._cached(token)
        if user is not None:
            return user
        if token_expiry(token) <= time.time():
            raise Unauthorized("The token has expired.")
        try:
            body = self.client.refresh(token)
        except PocketBaseRefused as exc:
            raise Unauthorized(exc.args[0] or "The token was refused by PocketBase.") from exc
        user = user_from_record(body.get("record") or {}, token)
        self._cache[token] = user
        return user

    async def verify(self, token: str) -> PocketBaseUser:
        """verify_sync in a worker thread (cache hits return at once, without a thread)."""
        user = self._cached(token)
        if user is not None:
            return user
        return await asyncio.to_thread(self.verify_sync, token)


_verifier: TokenVerifier | None = None


def get_verifier() -> TokenVerifier:
    """The process-wide verifier, configured from POCKETBASE_URL and RELAY_AUTH_CACHE_SECONDS."""
    global _verifier
    if _verifier is None:
        _verifier = TokenVerifier(PocketBaseClient(settings.POCKETBASE_URL), settings.RELAY_AUTH_CACHE_SECONDS)
    return _verifier


__all__ = ["PocketBaseUnavailable", "PocketBaseUser", "TokenVerifier", "Unauthorized", "get_verifier", "token_expiry"]
