"""`python manage.py replay C [--since T] [--until T] [--user U] [--dry-run]`."""
from django.core.management.base import CommandError

from auth_pocketbase.users import NotUsers, require_users
from messaging.management.support import TIME_FORMS, ChannelRangeCommand, run, user_arg
from messaging.ops.replay import replay
from messaging.state.access import load_policy


class Command(ChannelRangeCommand):
    help = (
        "Deliver a channel's stored messages again to its subscribers who may read it (or one such "
        "user) through NATS, marked replay. Prints how many messages. " + TIME_FORMS
    )

    def add_options(self, parser):
        parser.add_argument("--user", help="replay to this PocketBase user id only (checked with POCKETBASE_SUPERUSER_TOKEN)")
        parser.add_argument("--dry-run", action="store_true", help="count, send nothing")

    def handle_range(self, channel, since, until, *, user, dry_run, **options):
        if user is not None:
            try:
                require_users([user_arg(user)])
            except NotUsers as exc:
                raise CommandError(f"--user: {exc}") from None
        count = run(replay, channel, since, until, user, dry_run, load_policy(channel))
        verb = "would replay" if dry_run else "replayed"
        self.stdout.write(f"{verb} {count} message{'s' if count != 1 else ''} of {channel}")
