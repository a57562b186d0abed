"""Counting credential failures (`relay_auth_failures_total`) on every path that takes a
user's credential: the WebSocket handshake (middleware.py), the HTTP API
(messaging/api.py) and the login form (views.py). A connection whose token expires or
is revoked counts as reason "revoked" where it is closed (messaging/consumers.py).
"""
from contextlib import contextmanager

from messaging import metrics

from .client import PocketBaseRefused, PocketBaseUnavailable
from .credentials import BadCredential
from .verification import Unauthorized

REFUSED = (BadCredential, Unauthorized, PocketBaseRefused)


@contextmanager
def counted():
    """Count a credential refused inside the block (BadCredential, Unauthorized,
    PocketBaseRefused: reason "unauthorized") or one PocketBase could not verify
    (PocketBaseUnavailable: reason "unavailable"), then let the exception go on."""
    try:
        yield
    except REFUSED:
        metrics.AUTH_FAILURES.labels("unauthorized").inc()
        raise
    except PocketBaseUnavailable:
        metrics.AUTH_FAILURES.labels("unavailable").inc()
        raise
