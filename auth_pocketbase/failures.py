"""Counting credential failures (`relay_auth_failures_total`) on every path that takes a
user's credential: the WebSocket handshake (middleware.py), the HTTP API
(messaging/http/api.py) and the login form (views.py). A connection whose token expires or
is revoked counts as reason "revoked" where it is closed (messaging/deliver/websocket.py).
"""
from contextlib import contextmanager

from prometheus_client import Counter

from .client import PocketBaseRefused, PocketBaseUnavailable
from .credentials import BadCredential
from .verification import Unauthorized

REASONS = ("unauthorized", "unavailable", "revoked")
# Not in a registry of its own: the web process's (messaging/metrics.py WEB) takes it.
AUTH_FAILURES = Counter(
    "relay_auth_failures_total",
    "Refused or unverifiable user credentials (WebSocket handshakes, the HTTP API, the login form; "
    "auth_pocketbase/failures.py)",
    ["reason"], registry=None,
)
for _reason in REASONS:  # every reason is exported from the start, at 0
    AUTH_FAILURES.labels(_reason)

REFUSED = (BadCredential, Unauthorized, PocketBaseRefused)


@contextmanager
def counted():
    """Count a credential refused inside the block (BadCredential, Unauthorized,
    PocketBaseRefused: reason "unauthorized") or one PocketBase could not verify
    (PocketBaseUnavailable: reason "unavailable"), then let the exception go on."""
    try:
        yield
    except REFUSED:
        AUTH_FAILURES.labels("unauthorized").inc()
        raise
    except PocketBaseUnavailable:
        AUTH_FAILURES.labels("unavailable").inc()
        raise
