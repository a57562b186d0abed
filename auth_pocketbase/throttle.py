"""Throttles of the page's login and sign-up forms, per client address and per account.

Each `Limit` is a django-ratelimit counter in Django's default cache (Redis, so every
relay instance counts together): at most N in a fixed window of P seconds (the setting's
"N/P"; each key's windows start at its own offset, so across one window's end up to 2N
can pass in a short time). The client address is django-ratelimit's "ip" key: the ASGI
client address (REMOTE_ADDR), which daphne takes from X-Forwarded-For only when run with
--proxy-headers (docs/deploy.md); IPv6 addresses count per /64.

An attempt is counted before PocketBase is asked, so parallel requests cannot all pass
a limit that is nearly used up. A limit that counts failures only (logins) also counts
the attempts taken back (they succeeded), in a second counter with the same windows,
and allows N more attempts than those: a user who logs in often is never locked out,
and an attempt still waiting for PocketBase counts as a failure until it succeeds.
"""
import logging
from dataclasses import dataclass
from math import ceil

from django.conf import settings
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CACHE_ERRORS = (RedisError, OSError)


@dataclass(frozen=True)
class Limit:
    """A counter named `group` with the rate in setting `setting` (None: off), counted per
    client address (`per_account` False) or per account (the form's email, in lower case),
    of every attempt or (`failures_only`) of those that did not succeed. `what` names
    what is counted, for the refusal: "failed logins for this account"."""

    group: str
    setting: str
    per_account: bool
    failures_only: bool
    what: str


LOGIN = (
    Limit("login-account", "RELAY_LOGIN_ACCOUNT_RATE", True, True, "failed logins for this account"),
    Limit("login-ip", "RELAY_LOGIN_IP_RATE", False, True, "failed logins from your address"),
)
SIGNUP = (Limit("signup-ip", "RELAY_SIGNUP_IP_RATE", False, False, "sign-ups from your address"),)


class Throttled(Exception):
    """Too many attempts. `retry_after`: whole seconds until the window of the fullest
    counter ends (then the attempt is allowed again); the message says so to the user."""

    def __init__(self, what: str, retry_after: int):
        super().__init__(f"Too many {what}; try again in {wait_text(retry_after)}.")
        self.retry_after = retry_after


class ThrottleUnavailable(Exception):
    """The counters could not be read or written (Redis unreachable)."""


def wait_text(seconds: int) -> str:
    """'45 seconds', '1 minute', '15 minutes': a wait in seconds as the user reads it
    (minutes, rounded up, from one minute on)."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _usage(request, limit: Limit, email: str, group: str, increment: bool) -> dict | None:
    """django-ratelimit's usage of `group` under `limit`'s rate and key: {"count",
    "limit", "time_left" (seconds to the window's end, -1 when the cache failed)}, or
    None when the limit is off. Raises ThrottleUnavailable when Redis fails."""
    key = (lambda _group, _request: email.lower()) if limit.per_account else "ip"
    try:
        return get_usage(request, group=group, key=key, rate=getattr(settings, limit.setting), increment=increment)
    except CACHE_ERRORS as exc:
        raise ThrottleUnavailable(str(exc)) from exc


def attempt(request, limits: tuple[Limit, ...], email: str) -> None:
    """Count one attempt by this request's client address, or for `email`, against each
    of `limits`. Raises Throttled (the longest wait of the limits exceeded) when the
    attempt must not be made, ThrottleUnavailable when Redis fails."""
    refusals = []
    for limit in limits:
        usage = _usage(request, limit, email, limit.group, increment=True)
        if usage is None:
            continue
        used = usage["count"]
        if limit.failures_only:
            used -= _usage(request, limit, email, limit.group + "-ok", increment=False)["count"]
        if usage["time_left"] < 0:  # django-ratelimit could not count: refuse, briefly
            refusals.append((1, limit.what))
        elif used > usage["limit"]:
            # The counter's key changes once the clock's whole seconds pass the window's end.
            refusals.append((usage["time_left"] + 1, limit.what))
    if refusals:
        retry_after, what = max(refusals)
        raise Throttled(what, retry_after)


def take_back(request, limits: tuple[Limit, ...], email: str) -> None:
    """The attempt counted by `attempt` was not a failure (the password was right, or
    PocketBase did not answer): take it back from the limits that count failures only.
    A Redis failure here is logged, not raised (the attempt stays counted)."""
    for limit in limits:
        if limit.failures_only:
            try:
                _usage(request, limit, email, limit.group + "-ok", increment=True)
            except ThrottleUnavailable as exc:
                log.warning("could not take an attempt back from %s: %s", limit.group, exc)
