"""`python manage.py channel C [--access ...] [--add-member U ...] [--remove-member U ...]`."""
from django.core.management.base import BaseCommand

from messaging import backends, publishing
from messaging.access import load_policy
from messaging.management.support import channel_arg, run, user_arg
from messaging.models import Channel
from messaging.revocation import change_access
from messaging.subscriptions import Registry
from messaging.timeparse import format_ts


async def channel_stats(name: str) -> tuple[int, int | None, int]:
    """(retained messages, newest ts or None, subscriber count) from Redis."""
    redis = backends.get().redis
    count, last_ts = await publishing.history_store(redis).stats(name)
    return count, last_ts, len(await Registry(redis).subscribers(name))


class Command(BaseCommand):
    help = "Show a channel (access, members, retained messages, subscribers) or change its access and members."

    def add_arguments(self, parser):
        parser.add_argument("channel")
        parser.add_argument("--access", choices=[c for c, _ in Channel.ACCESS_CHOICES])
        parser.add_argument("--add-member", nargs="+", default=[], metavar="USERID",
                            help="PocketBase user record ids (as in the welcome frame's userid), not emails")
        parser.add_argument("--remove-member", nargs="+", default=[], metavar="USERID")

    def handle(self, *args, channel, access, add_member, remove_member, **options):
        channel = channel_arg(channel)
        add_member = [user_arg(u) for u in add_member]
        remove_member = [user_arg(u) for u in remove_member]
        if access or add_member or remove_member:
            policy = change_access(channel, access, add_member, remove_member)
        else:
            policy = load_policy(channel, create=False)
        count, last_ts, subscribers = run(channel_stats, channel)
        self.stdout.write(f"channel: {channel}")
        self.stdout.write(f"access: {policy.access}")
        self.stdout.write(f"members: {' '.join(sorted(policy.members)) or '-'}")
        self.stdout.write(f"messages: {count}")
        self.stdout.write(f"last_ts: {f'{last_ts} ({format_ts(last_ts)})' if last_ts is not None else '-'}")
        self.stdout.write(f"subscribers: {subscribers}")
