"""Logging in to PocketBase (its ``users`` collection) for the token the relay checks."""

from __future__ import annotations

from typing import Any

import requests

from .errors import Fatal, os_reason
from .protocol import pocketbase_auth_url


def login(pocketbase_url: str, email: str, password: str, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
    """Log in to PocketBase's ``users`` collection; return ``(token, record)``.

    ``timeout`` is in seconds. Raises :class:`Fatal` with a one-line reason on a wrong
    email/password (HTTP 400), an unreachable PocketBase, a timeout or any unexpected
    answer.
    """
    url = pocketbase_auth_url(pocketbase_url)
    try:
        resp = requests.post(url, json={"identity": email, "password": password}, timeout=timeout)
    except requests.exceptions.Timeout:
        raise Fatal(f"PocketBase at {pocketbase_url} did not answer within {timeout:g}s") from None
    except requests.exceptions.ConnectionError as exc:
        raise Fatal(f"cannot reach PocketBase at {pocketbase_url} ({os_reason(exc)})") from None
    except requests.exceptions.RequestException as exc:
        raise Fatal(f"cannot use PocketBase URL {pocketbase_url!r}: {exc.__class__.__name__}") from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if resp.status_code == 400:
        raise Fatal(f"login failed for {email}: wrong email or password"
                    + (f" (PocketBase: {message})" if message else ""))
    if resp.status_code == 404:
        raise Fatal(f"login failed: {url} not found (HTTP 404); is --pocketbase a PocketBase with a users collection?")
    if resp.status_code == 429:
        raise Fatal("login failed: PocketBase is rate-limiting logins (HTTP 429); try again shortly")
    if resp.status_code != 200:
        raise Fatal(f"login failed: PocketBase answered HTTP {resp.status_code}" + (f" ({message})" if message else ""))
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
        raise Fatal(f"login failed: unexpected answer from PocketBase at {pocketbase_url} (no token)")
    record = body.get("record") if isinstance(body.get("record"), dict) else {}
    return body["token"], record
