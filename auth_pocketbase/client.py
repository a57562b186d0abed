"""A small synchronous PocketBase client (requests) for the `users` collection.

Endpoints (PocketBase's records API): `auth-with-password` logs in, `auth-refresh`
verifies a token (401/403 when it is bad, expired, revoked or not a `users` token),
`/api/health` answers while the server runs. Async callers run these in a thread
(see verification.py): no blocking HTTP call on the event loop.
"""
from dataclasses import dataclass

import requests

TIMEOUT = (2.0, 5.0)  # connect, read (seconds)
COLLECTION = "users"


class PocketBaseUnavailable(Exception):
    """PocketBase did not answer (connection refused, timeout, 5xx)."""


class PocketBaseRefused(Exception):
    """PocketBase definitely refused: bad credentials or token (4xx). `status` is the HTTP code."""

    def __init__(self, status: int, message: str, data: dict | None = None):
        super().__init__(message)
        self.status = status
        self.data = data or {}


@dataclass(frozen=True)
class PocketBaseUser:
    """A verified `users` record: `id` (record id), `name`, `email`, the `token` it was
    verified with and that token's `expires_at` (Unix seconds, from its `exp` claim)."""

    id: str
    name: str
    email: str
    token: str
    expires_at: float


class PocketBaseClient:
    """Calls PocketBase at `base_url` (e.g. http://127.0.0.1:8090)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def _post(self, path: str, **kwargs) -> dict:
        try:
            response = self.session.post(self.base_url + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise PocketBaseUnavailable(str(exc)) from exc
        if response.status_code >= 500:
            raise PocketBaseUnavailable(f"PocketBase answered {response.status_code}")
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text[:200]}
            raise PocketBaseRefused(response.status_code, body.get("message", ""), body.get("data"))
        try:
            return response.json()
        except ValueError as exc:
            raise PocketBaseUnavailable(f"PocketBase answered {response.status_code} without JSON") from exc

    def login(self, email: str, password: str) -> dict:
        """auth-with-password: returns {"token": str, "record": {...}}.

        Raises PocketBaseRefused (400 for wrong credentials) or PocketBaseUnavailable.
        """
        return self._post(
            f"/api/collections/{COLLECTION}/auth-with-password",
            json={"identity": email, "password": password},
        )

    def sign_up(self, email: str, password: str, name: str) -> dict:
        """Create a `users` record (PocketBase allows sign-up by default); returns it."""
        return self._post(
            f"/api/collections/{COLLECTION}/records",
            json={"email": email, "password": password, "passwordConfirm": password, "name": name},
        )

    def refresh(self, token: str) -> dict:
        """auth-refresh with the token as `Authorization`: the token's record, when valid.

        Raises PocketBaseRefused (401/403: invalid, expired, revoked, or a superuser's or
        another collection's token) or PocketBaseUnavailable.
        """
        return self._post(f"/api/collections/{COLLECTION}/auth-refresh", headers={"Authorization": token})

    def healthy(self, timeout: float | tuple[float, float] = TIMEOUT) -> str:
        """'ok' when GET /api/health answers 200, else a short reason. `timeout` is
        requests' (seconds to connect, and between bytes read)."""
        try:
            response = self.session.get(self.base_url + "/api/health", timeout=timeout)
        except requests.RequestException as exc:
            return type(exc).__name__
        return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"
