"""Which credential a request carries (PROTOCOL.md "Authentication"): plain rules.

The first credential *present* decides, in this order: the `Authorization` header
(`Bearer <token>` or a bare `<token>`, as PocketBase accepts), the `token` query
parameter (WebSocket only), the Django session of a user who logged in on the page.
"""
from dataclasses import dataclass
from urllib.parse import parse_qs

SESSION_TOKEN_KEY = "pocketbase_token"


class BadCredential(Exception):
    """A credential is present but malformed (empty, or two Authorization headers)."""


@dataclass(frozen=True)
class Credential:
    """A token and where it came from: 'header', 'query' or 'session'."""

    token: str
    source: str


def token_from_authorization(values: list[str]) -> str | None:
    """The token of the Authorization header values (None when there is none).

    Raises BadCredential for two headers or an empty value.
    """
    if not values:
        return None
    if len(values) > 1:
        raise BadCredential("Send one Authorization header, not several.")
    value = values[0].strip()
    scheme, _, rest = value.partition(" ")
    token = rest.strip() if scheme.lower() == "bearer" else value
    if not token or " " in token:
        raise BadCredential("The Authorization header must be 'Bearer <token>'.")
    return token


def token_from_query(query_string: bytes) -> str | None:
    """The `token` query parameter (None when absent); BadCredential when repeated or empty."""
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("token")
    if values is None:
        return None
    if len(values) != 1 or not values[0]:
        raise BadCredential("The 'token' query parameter must be given once, not empty.")
    return values[0]


def header_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """All values of one header in an ASGI scope's header list (names are lower case)."""
    return [v.decode("latin-1") for k, v in headers if k == name]
