"""PocketBase users for the benchmark, created and logged in over its API."""
from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from localservers import PocketBase

USER_PASSWORD_BYTES = 12


def create_users(pb_url: str, count: int, prefix: str = "bench") -> list[dict]:
    """Create ``count`` PocketBase users (8 threads) and log each in; returns
    ``[{"id", "email", "token"}, ...]`` in creation order."""
    local = threading.local()

    def make(i: int) -> dict:
        if not hasattr(local, "api"):
            local.api = PocketBase(pb_url, timeout=30)
        email = f"{prefix}{i}-{secrets.token_hex(4)}@example.com"
        password = secrets.token_urlsafe(USER_PASSWORD_BYTES)
        for attempt in range(5):
            try:
                local.api.create_user(email, password, f"{prefix}{i}")
                token, record = local.api.login(email, password)
                return {"id": record["id"], "email": email, "token": token}
            except Exception:  # noqa: BLE001 - a busy machine may time out; retry a few times
                if attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(make, range(count)))
