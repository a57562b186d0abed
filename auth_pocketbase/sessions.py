"""The page's Django session holds the PocketBase token of the user who logged in.

The WebSocket middleware and the HTTP API read the token back (credentials.py) and
verify it with PocketBase like any other; the session only remembers it.
"""
from .client import PocketBaseUser
from .credentials import SESSION_TOKEN_KEY

SESSION_USER_KEY = "pocketbase_user"


def log_in(request, user: PocketBaseUser) -> None:
    """Start a fresh session (new key, against fixation) for a verified user."""
    request.session.flush()
    request.session.cycle_key()
    request.session[SESSION_TOKEN_KEY] = user.token
    request.session[SESSION_USER_KEY] = {"id": user.id, "name": user.name, "email": user.email}


def session_user(request) -> dict | None:
    """{"id", "name", "email"} of the logged-in user, or None."""
    if not request.session.get(SESSION_TOKEN_KEY):
        return None
    return request.session.get(SESSION_USER_KEY)
