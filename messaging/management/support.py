"""What the relay's management commands share: argument checks and backend calls that
end in a one-line CommandError, never a traceback."""
import time

from django.core.management.base import BaseCommand, CommandError

from messaging.protocol.errors import RelayError
from messaging.protocol.limits import DEFAULT_LIMIT, MAX_LIMIT
from messaging.protocol.timeparse import empty_range, parse_time
from messaging.protocol.validation import is_valid_id, validate_channel
from messaging.state import backends
from messaging.state.backends import REDIS_ERRORS

TIME_FORMS = "T: Unix ns, ISO 8601 or 15m/2h/7d back from now."


class ChannelRangeCommand(BaseCommand):
    """A command on a range of one channel's messages: the positional channel and the
    --since (exclusive) / --until (inclusive) times, checked (channel_arg,
    time_range_args) before `handle_range(channel, since, until, **options)` runs with
    them (ts in Unix ns, None when not given). Subclasses add their own options in
    `add_options(parser)`."""

    def add_arguments(self, parser):
        parser.add_argument("channel")
        parser.add_argument("--since", help="exclusive: messages with ts > T")
        parser.add_argument("--until", help="inclusive: messages with ts <= T")
        self.add_options(parser)

    def add_options(self, parser):
        """The command's own options."""

    def handle(self, *args, channel, since, until, **options):
        self.handle_range(channel_arg(channel), *time_range_args(since, until), **options)

    def handle_range(self, channel: str, since: int | None, until: int | None, **options):
        raise NotImplementedError


def channel_arg(value: str) -> str:
    """A valid channel id, else CommandError."""
    try:
        return validate_channel(value)
    except RelayError as exc:
        raise CommandError(f"invalid channel {value!r}: {exc.message}") from None


def user_arg(value: str) -> str:
    """A valid user id, else CommandError."""
    if not is_valid_id(value):
        raise CommandError(f"invalid user id {value!r}: 1 to 64 of A-Z a-z 0-9 _ -")
    return value


def time_arg(name: str, value: str | None) -> int | None:
    """Unix ns from Unix ns, ISO 8601 or a duration back from now; None stays None."""
    if value is None:
        return None
    try:
        return parse_time(value, time.time_ns())
    except ValueError as exc:
        raise CommandError(f"--{name}: {exc}") from None


def time_range_args(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """--since and --until as Unix ns (time_arg); CommandError when the range is empty."""
    since_ns, until_ns = time_arg("since", since), time_arg("until", until)
    reason = empty_range(since_ns, until_ns)
    if reason:
        raise CommandError(reason)
    return since_ns, until_ns


def limit_arg(value: int | None) -> int:
    """--limit: 1 or more (default 100), clamped to 1000."""
    if value is None:
        return DEFAULT_LIMIT
    if value < 1:
        raise CommandError("--limit must be at least 1")
    return min(value, MAX_LIMIT)


def run(coroutine_function, *args):
    """Run an async function against Redis/NATS from a command; backend failures become
    a CommandError naming the backend. The loop's connections are closed afterwards."""

    try:
        return backends.run_sync(coroutine_function, *args)
    except RelayError as exc:
        raise CommandError(exc.message) from None
    except REDIS_ERRORS as exc:
        raise CommandError(f"Redis is unavailable: {exc}") from None
