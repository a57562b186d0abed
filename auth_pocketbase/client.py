"""A small synchronous PocketBase client (requests) for the `users` collection.

Endpoints (PocketBase's records API): `auth-with-password` logs in, `auth-refresh`
verifies a token (401/403 when it is bad, expired, revoked or not a `users` token),
the records list (with a superuser's token) says which user ids exist, `/api/health`
answers while the server runs. Async callers run these in a thread (see
verification.py): no blocking HTTP call on the event loop.
"""
import os
from collections.abc import Iterable
from dataclasses import dataclass

import requests

TIMEOUT = (2.0, 5.0)  # connect, read (seconds)
COLLECTION = "users"
USERS_PER_REQUEST = 100  # ids per records-list filter (keeps the URL short)


def _filter_string(value: str) -> str:
    """`value` as a single-quoted string literal of PocketBase's filter syntax."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _reason(exc: BaseException) -> str:
    """A short reason for a failed request: the OS error behind requests' and urllib3's
    wrappers (``Connection refused``), else the exception's class name."""
    seen = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__


class PocketBaseUnavailable(Exception):
    """PocketBase did not answer (connection refused, timeout, 5xx)."""


class PocketBaseRefused(Exception):
    """PocketBase definitely refused: bad credentials or token (4xx). `status` is the HTTP code."""

    def __init__(self, status: int, message: str, data: dict | None = None):
        super().__init__(message)
        self.status = status
        self.data = data or {}


def superuser_refusal(exc: PocketBaseRefused, token_name: str) -> str:
    """Why PocketBase refused a request made with the setting `token_name` as a
    superuser token, as words to follow "PocketBase at <url>"."""
    if exc.status == 401:
        return f"refused {token_name} (HTTP 401: invalid or expired; make a new superuser token)"
    if exc.status == 403:
        return f"refused {token_name} (HTTP 403: not a superuser's token)"
    return f"answered HTTP {exc.status}{f' ({exc})' if str(exc) else ''} for its users collection"


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

    def _request(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.session.request(method, self.base_url + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise PocketBaseUnavailable(_reason(exc)) from exc
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
        return self._request(
            "POST", f"/api/collections/{COLLECTION}/auth-with-password",
            json={"identity": email, "password": password},
        )

    def sign_up(self, email: str, password: str, name: str) -> dict:
        """Create a `users` record (PocketBase allows sign-up by default); returns it."""
        return self._request(
            "POST", f"/api/collections/{COLLECTION}/records",
            json={"email": email, "password": password, "passwordConfirm": password, "name": name},
        )

    def refresh(self, token: str) -> dict:
        """auth-refresh with the token as `Authorization`: the token's record, when valid.

        Raises PocketBaseRefused (401/403: invalid, expired, revoked, or a superuser's or
        another collection's token) or PocketBaseUnavailable.
        """
        return self._request("POST", f"/api/collections/{COLLECTION}/auth-refresh", headers={"Authorization": token})

    def users_collection(self, superuser_token: str) -> dict:
        """The `users` collection's settings, which only a superuser may read: how a
        superuser token is checked. Raises PocketBaseRefused (401: invalid or expired
        token; 403: a token, but not a superuser's) or PocketBaseUnavailable."""
        return self._request("GET", f"/api/collections/{COLLECTION}", params={"fields": "id,name"},
                             headers={"Authorization": superuser_token})

    def existing_users(self, userids: Iterable[str], superuser_token: str) -> set[str]:
        """Which of `userids` (record ids, as in a token's record and messages' `userid`)
        are records of the `users` collection.

        Needs a superuser's token: PocketBase's default rules show a user only their own
        record, and a list request whose token may not see records answers 200 with no
        items rather than an error, so the token itself is checked first
        (users_collection). Raises PocketBaseRefused (401/403: the token is not a valid
        superuser token) or PocketBaseUnavailable.
        """
        self.users_collection(superuser_token)
        wanted = sorted(set(userids))
        found: set[str] = set()
        for start in range(0, len(wanted), USERS_PER_REQUEST):
            chunk = wanted[start:start + USERS_PER_REQUEST]
            page = self._request("GET", f"/api/collections/{COLLECTION}/records", headers={"Authorization": superuser_token},
                                 params={"filter": " || ".join(f"id = {_filter_string(u)}" for u in chunk),
                                         "fields": "id", "perPage": len(chunk), "skipTotal": "true"})
            found.update(item.get("id") for item in page.get("items", []) if isinstance(item, dict))
        return found

    def healthy(self, timeout: float | tuple[float, float] = TIMEOUT) -> str:
        """'ok' when GET /api/health answers 200, else a short reason. `timeout` is
        requests' (seconds to connect, and between bytes read)."""
        try:
            response = self.session.get(self.base_url + "/api/health", timeout=timeout)
        except requests.RequestException as exc:
            return type(exc).__name__
        return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"
