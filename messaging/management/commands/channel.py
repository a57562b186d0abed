"""`python manage.py channel C [--access ...] [--add-member U ...] [--remove-member U ...]`."""
from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError

from messaging import backends, publishing
from messaging.access import load_policy
from messaging.backends import REDIS_ERRORS
from messaging.errors import RelayError
from messaging.models import Channel
from messaging.revocation import change_access
from messaging.subscriptions import Registry
from messaging.validation import is_valid_id, validate_channel


async def channel_stats(name: str) -> tuple[int, int | None, int]:
    """(retained messages, newest ts or None, subscriber count) from Redis."""
    be = backends.get()
    try:
        count, last_ts = await publishing.history_store(be.redis).stats(name)
        subscribers = len(await Registry(be.redis).subscribers(name))
        return count, last_ts, subscribers
    finally:
        await backends.release()


class Command(BaseCommand):
    help = "Show a channel (access, members, retained messages, subscribers) or change its access and members."

    def add_arguments(self, parser):
        parser.add_argument("channel")
        parser.add_argument("--access", choices=[c for c, _ in Channel.ACCESS_CHOICES])
        parser.add_argument("--add-member", nargs="+", default=[], metavar="USERID")
        parser.add_argument("--remove-member", nargs="+", default=[], metavar="USERID")

    def handle(self, *args, channel, access, add_member, remove_member, **options):
        try:
            validate_channel(channel)
        except RelayError as exc:
            raise CommandError(f"invalid channel {channel!r}: {exc.message}") from None
        bad = [u for u in add_member + remove_member if not is_valid_id(u)]
        if bad:
            raise CommandError(f"invalid user id {bad[0]!r}: 1 to 64 of A-Z a-z 0-9 _ -")
        try:
            if access or add_member or remove_member:
                policy = change_access(channel, access, add_member, remove_member)
            else:
                policy = load_policy(channel, create=False)
            count, last_ts, subscribers = async_to_sync(channel_stats)(channel)
        except RelayError as exc:
            raise CommandError(exc.message) from None
        except REDIS_ERRORS as exc:
            raise CommandError(f"Redis is unavailable: {exc}") from None
        self.stdout.write(f"channel: {channel}")
        self.stdout.write(f"access: {policy.access}")
        self.stdout.write(f"members: {' '.join(sorted(policy.members)) or '-'}")
        self.stdout.write(f"messages: {count}")
        self.stdout.write(f"last_ts: {last_ts if last_ts is not None else '-'}")
        self.stdout.write(f"subscribers: {subscribers}")
