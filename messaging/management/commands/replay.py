"""`python manage.py replay C [--since T] [--until T] [--user U] [--dry-run]`."""
from django.core.management.base import BaseCommand

from messaging.access import load_policy
from messaging.management.support import (
    TIME_FORMS, add_channel_range_arguments, channel_arg, run, time_arg, user_arg,
)
from messaging.replay import replay


class Command(BaseCommand):
    help = (
        "Deliver a channel's stored messages again to its subscribers who may read it (or one such "
        "user) through NATS, marked replay. Prints how many messages. " + TIME_FORMS
    )

    def add_arguments(self, parser):
        add_channel_range_arguments(parser)
        parser.add_argument("--user", help="replay to this user id only")
        parser.add_argument("--dry-run", action="store_true", help="count, send nothing")

    def handle(self, *args, channel, since, until, user, dry_run, **options):
        channel = channel_arg(channel)
        since, until = time_arg("since", since), time_arg("until", until)
        user = user_arg(user) if user is not None else None
        count = run(replay, channel, since, until, user, dry_run, load_policy(channel))
        verb = "would replay" if dry_run else "replayed"
        self.stdout.write(f"{verb} {count} message{'s' if count != 1 else ''} of {channel}")
