"""Whether user ids are PocketBase users, for the operators' tools (`manage.py channel`
and the admin check channel members with it before saving them)."""
from pathlib import Path

from django.conf import settings

from .client import PocketBaseClient, PocketBaseRefused, PocketBaseUnavailable, superuser_refusal


class NotUsers(ValueError):
    """Some ids are not records of PocketBase's `users` collection, or PocketBase could
    not say (unreachable, no POCKETBASE_SUPERUSER_TOKEN, a token it refuses);
    `str()` is one sentence saying which."""


def superuser_token() -> str:
    """settings.POCKETBASE_SUPERUSER_TOKEN, else the contents of the file that
    POCKETBASE_SUPERUSER_TOKEN_FILE names (read at each call, so a new token needs no
    restart), else "". Raises NotUsers when that file cannot be read."""
    if settings.POCKETBASE_SUPERUSER_TOKEN or not settings.POCKETBASE_SUPERUSER_TOKEN_FILE:
        return settings.POCKETBASE_SUPERUSER_TOKEN
    try:
        return Path(settings.POCKETBASE_SUPERUSER_TOKEN_FILE).read_text().strip()
    except OSError as exc:
        raise NotUsers(f"cannot read POCKETBASE_SUPERUSER_TOKEN_FILE {settings.POCKETBASE_SUPERUSER_TOKEN_FILE!r} "
                       f"({exc.strerror or exc})") from None


def require_users(userids: list[str]) -> None:
    """Return when every id (validated user ids) is a record of the `users` collection,
    asked with superuser_token() at settings.POCKETBASE_URL; else raise NotUsers."""
    token, url = superuser_token(), settings.POCKETBASE_URL
    if not token:
        raise NotUsers("cannot check that the users exist: POCKETBASE_SUPERUSER_TOKEN is not set "
                       "(a PocketBase superuser token, see the README)")
    try:
        found = PocketBaseClient(url).existing_users(userids, token)
    except PocketBaseUnavailable as exc:
        raise NotUsers(f"cannot check that the users exist: PocketBase at {url} is unavailable ({exc})") from None
    except PocketBaseRefused as exc:
        raise NotUsers(f"cannot check that the users exist: PocketBase at {url} "
                       f"{superuser_refusal(exc, 'POCKETBASE_SUPERUSER_TOKEN')}") from None
    missing = [u for u in userids if u not in found]
    if missing:
        raise NotUsers(f"not PocketBase users: {', '.join(missing)} (members are record ids of the "
                       "users collection, as in the welcome frame's userid)")
