"""`python manage.py channel C [--access ...] [--add-member U ...] [--remove-member U ...]`.

Repeated member flags add up (`--add-member A --add-member B C` adds three). A change
is checked whole before anything is written: ids that are not PocketBase users (asked
with POCKETBASE_SUPERUSER_TOKEN), removals of users who are not members, or an id both
added and removed refuse the whole command with one line and exit 1.
"""
from django.core.management.base import BaseCommand, CommandError

from auth_pocketbase.users import NotUsers, require_users
from messaging.management.support import channel_arg, run, user_arg
from messaging.models import Channel, ChannelMember
from messaging.ops.access_changes import change_access
from messaging.protocol.timeparse import format_ts
from messaging.state import backends
from messaging.state.access import load_policy


async def channel_stats(name: str) -> tuple[int, int | None, int]:
    """(retained messages, newest ts or None, subscriber count) from Redis."""
    be = backends.get()
    count, last_ts = await be.history.stats(name)
    return count, last_ts, len(await be.registry.subscribers(name))


def check_member_changes(channel: str, add: list[str], remove: list[str]) -> None:
    """CommandError unless every id removed is a member of `channel`, none is both added
    and removed, and every id added is a PocketBase user."""
    both = [u for u in add if u in remove]
    if both:
        raise CommandError(f"both --add-member and --remove-member: {', '.join(both)}")
    if remove:
        members = set(ChannelMember.objects.filter(channel__name=channel).values_list("userid", flat=True))
        strangers = [u for u in remove if u not in members]
        if strangers:
            raise CommandError(f"not a member of {channel}: {', '.join(strangers)}")
    if add:
        try:
            require_users(add)
        except NotUsers as exc:
            raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = "Show a channel (access, members, retained messages, subscribers) or change its access and members."

    def add_arguments(self, parser):
        parser.add_argument("channel")
        parser.add_argument("--access", choices=[c for c, _ in Channel.ACCESS_CHOICES])
        parser.add_argument("--add-member", action="extend", nargs="+", default=[], metavar="USERID",
                            help="PocketBase user record ids (as in the welcome frame's userid), not emails; "
                                 "repeatable")
        parser.add_argument("--remove-member", action="extend", nargs="+", default=[], metavar="USERID",
                            help="members to take off; repeatable")

    def handle(self, *args, channel, access, add_member, remove_member, **options):
        channel = channel_arg(channel)
        add_member = list(dict.fromkeys(user_arg(u) for u in add_member))
        remove_member = list(dict.fromkeys(user_arg(u) for u in remove_member))
        if access or add_member or remove_member:
            try:
                check_member_changes(channel, add_member, remove_member)
            except CommandError as exc:
                raise CommandError(f"{exc}; nothing changed") from None
            policy = change_access(channel, access, add_member, remove_member)
        else:
            policy = load_policy(channel)
        count, last_ts, subscribers = run(channel_stats, channel)
        self.stdout.write(f"channel: {channel}")
        self.stdout.write(f"access: {policy.access}")
        self.stdout.write(f"members: {' '.join(sorted(policy.members)) or '-'}")
        self.stdout.write(f"messages: {count}")
        self.stdout.write(f"last_ts: {f'{last_ts} ({format_ts(last_ts)})' if last_ts is not None else '-'}")
        self.stdout.write(f"subscribers: {subscribers}")
