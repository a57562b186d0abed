"""A minimal PocketBase REST client for tests and the dev runner (uses ``requests``)."""

from __future__ import annotations

from typing import Any

import requests


class PocketBaseError(RuntimeError):
    """PocketBase answered with a non-2xx status. ``status`` (int) and ``data``
    (the decoded JSON body, or the text) tell why."""

    def __init__(self, status: int, data: Any, what: str) -> None:
        super().__init__(f"PocketBase {what}: HTTP {status}: {data}")
        self.status = status
        self.data = data


class PocketBase:
    """Client for one PocketBase at ``url`` (``http://host:port``).

    ``superuser_email``/``superuser_password`` are needed only by the admin
    helpers (find/update/delete users, collection settings). Every method raises
    :class:`PocketBaseError` on an HTTP error and ``requests.RequestException``
    when PocketBase is unreachable. ``timeout`` is seconds per request.
    """

    def __init__(self, url: str, superuser_email: str | None = None,
                 superuser_password: str | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.superuser_email = superuser_email
        self.superuser_password = superuser_password
        self.timeout = timeout
        self._session = requests.Session()
        self._superuser_token: str | None = None

    # -- plumbing ----------------------------------------------------------------------
    def _call(self, method: str, path: str, what: str, token: str | None = None,
              **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = token
        resp = self._session.request(method, self.url + path, headers=headers,
                                     timeout=self.timeout, **kwargs)
        if resp.status_code >= 400:
            try:
                data = resp.json()
            except ValueError:
                data = resp.text
            raise PocketBaseError(resp.status_code, data, what)
        return resp.json() if resp.content else None

    def _admin(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            return self._call(method, path, what, token=self.superuser_token(), **kwargs)
        except PocketBaseError as exc:
            if exc.status != 401:
                raise
            self._superuser_token = None  # expired: log in again once
            return self._call(method, path, what, token=self.superuser_token(), **kwargs)

    # -- public ------------------------------------------------------------------------
    def health(self) -> bool:
        """True when ``GET /api/health`` answers 200; False when down or unhappy."""
        try:
            return self._session.get(self.url + "/api/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def forget_superuser_token(self) -> None:
        """Drop the cached superuser token (after a `superuser upsert`, which rotates it;
        an invalid token is not always a 401: PocketBase hides records with a 404)."""
        self._superuser_token = None

    def superuser_token(self) -> str:
        """A superuser auth token (cached). Raises ``ValueError`` without credentials."""
        if self._superuser_token is None:
            self._superuser_token = self._superuser_login()["token"]
        return self._superuser_token

    def _superuser_login(self) -> dict:
        """auth-with-password as the superuser: ``{"token", "record"}``."""
        if not (self.superuser_email and self.superuser_password):
            raise ValueError("this PocketBase client has no superuser credentials")
        body = {"identity": self.superuser_email, "password": self.superuser_password}
        return self._call("POST", "/api/collections/_superusers/auth-with-password", "superuser login", json=body)

    def superuser_api_token(self, duration: int) -> str:
        """A superuser token valid for ``duration`` seconds (PocketBase's impersonate
        endpoint, the superuser on itself): what an operator gives the relay as
        POCKETBASE_SUPERUSER_TOKEN."""
        me = self._superuser_login()
        data = self._call("POST", f"/api/collections/_superusers/impersonate/{me['record']['id']}",
                          "impersonate superuser", token=me["token"], json={"duration": int(duration)})
        return data["token"]

    def create_user(self, email: str, password: str, name: str = "", **fields: Any) -> dict:
        """Sign up a ``users`` record (no auth needed); returns the record dict
        (``id``, ``name``, ``email`` if visible, ...)."""
        body = {"email": email, "password": password, "passwordConfirm": password,
                "name": name, "emailVisibility": True, **fields}
        return self._call("POST", "/api/collections/users/records", "create user", json=body)

    def login(self, email: str, password: str) -> tuple[str, dict]:
        """Log a user in; returns ``(token, record)``."""
        data = self._call("POST", "/api/collections/users/auth-with-password", "login",
                          json={"identity": email, "password": password})
        return data["token"], data["record"]

    def auth_refresh(self, token: str) -> tuple[str, dict]:
        """Check a user token the way the relay does; returns ``(new_token, record)``.
        Raises :class:`PocketBaseError` (401/403) for a bad, expired or revoked token."""
        data = self._call("POST", "/api/collections/users/auth-refresh", "auth-refresh",
                          token=token)
        return data["token"], data["record"]

    def find_user(self, email: str) -> dict | None:
        """The ``users`` record with this email, or None (superuser)."""
        safe = email.replace("\\", "\\\\").replace("'", "\\'")
        data = self._admin("GET", "/api/collections/users/records", "find user",
                           params={"filter": f"email='{safe}'", "perPage": 1})
        items = data.get("items") or []
        return items[0] if items else None

    def update_user(self, user_id: str, **fields: Any) -> dict:
        """PATCH a ``users`` record as superuser; returns the updated record."""
        return self._admin("PATCH", f"/api/collections/users/records/{user_id}",
                           "update user", json=fields)

    def update_password(self, user_id: str, password: str) -> dict:
        """Set a new password (superuser). PocketBase then refuses the user's
        existing tokens: this is how tests revoke a token."""
        return self.update_user(user_id, password=password, passwordConfirm=password)

    def delete_user(self, user_id: str) -> None:
        """Delete a ``users`` record (superuser); its tokens stop working."""
        self._admin("DELETE", f"/api/collections/users/records/{user_id}", "delete user")

    def set_token_duration(self, seconds: int, collection: str = "users") -> dict:
        """Set the lifetime (seconds) of new auth tokens of ``collection`` (superuser),
        e.g. a few seconds to test expiry. Returns the collection dict."""
        return self._admin("PATCH", f"/api/collections/{collection}", "update collection",
                           json={"authToken": {"duration": int(seconds)}})
