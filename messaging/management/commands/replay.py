"""`python manage.py replay C [--since T] [--until T] [--user U] [--dry-run]`."""
from django.core.management.base import BaseCommand, CommandError

from auth_pocketbase.users import NotUsers, require_users
from messaging.management.support import (
    TIME_FORMS,
    add_channel_range_arguments,
    channel_arg,
    run,
    time_range_args,
    user_arg,
)
from messaging.ops.replay import replay
from messaging.state.access import load_policy


class Command(BaseCommand):
    help = (
        "Deliver a channel's stored messages again to its subscribers who may read it (or one such "
        "user) through NATS, marked replay. Prints how many messages. " + TIME_FORMS
    )

    def add_arguments(self, parser):
        add_channel_range_arguments(parser)
        parser.add_argument("--user", help="replay to this PocketBase user id only (checked with POCKETBASE_SUPERUSER_TOKEN)")
        parser.add_argument("--dry-run", action="store_true", help="count, send nothing")

    def handle(self, *args, channel, since, until, user, dry_run, **options):
        channel = channel_arg(channel)
        since, until = time_range_args(since, until)
        if user is not None:
            try:
                require_users([user_arg(user)])
            except NotUsers as exc:
                raise CommandError(f"--user: {exc}") from None
        count = run(replay, channel, since, until, user, dry_run, load_policy(channel))
        verb = "would replay" if dry_run else "replayed"
        self.stdout.write(f"{verb} {count} message{'s' if count != 1 else ''} of {channel}")
