"""`python manage.py history C [--since T] [--until T] [--limit N] [--json]`."""
import orjson

from messaging.management.support import TIME_FORMS, ChannelRangeCommand, limit_arg, run
from messaging.protocol.timeparse import format_ts
from messaging.state import backends


class Command(ChannelRangeCommand):
    help = (
        "Print a channel's stored messages, oldest first. With --since: the oldest N after it; "
        "otherwise the newest N (up to --until). " + TIME_FORMS
    )

    def add_options(self, parser):
        parser.add_argument("--limit", type=int, help="page size (default 100, at most 1000)")
        parser.add_argument("--json", action="store_true", help="one JSON message object per line")

    def handle_range(self, channel, since, until, *, limit, json, **options):
        limit = limit_arg(limit)

        async def read():
            store = backends.get().history
            return await store.page(channel, since=since, until=until, limit=limit)

        page = run(read)
        if not page.messages and not json:
            self.stderr.write(f"(no stored messages of {channel} in that range)")
        for message in page.messages:
            if json:
                self.stdout.write(orjson.dumps(message).decode())
            else:
                self.stdout.write(f"{format_ts(message['ts'])}  {message['name'] or message['userid']}: {message['text']}")
        if page.more and not json:
            hint = f"--since {page.messages[-1]['ts']}" if since is not None else f"--until {page.messages[0]['ts'] - 1}"
            self.stderr.write(f"(more messages: next page with {hint})")
