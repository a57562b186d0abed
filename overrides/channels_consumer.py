"""channels' AsyncConsumer.__call__ and dispatch, with the consumer's messages taken
from one inbox (messaging/deliver/inbox.py) instead of `await_many_dispatch`.

`await_many_dispatch` waits on the ASGI `receive` and the channel-layer receive with
`asyncio.wait` on a fresh task per message, and channels' `dispatch` hops to a thread
for `aclose_old_connections` before every message; the inbox runs one long-lived pump
per source and dispatches in arrival order across sources (docs/performance.md,
"Decisions": daphne 126 -> 109 µs per delivery, 05138e0; 765 -> 711, afed505). It sets
what AsyncConsumer.__call__ sets and AsyncWebsocketConsumer uses (`scope`,
`base_send`) as of channels 4.3.2 (pinned); tests/unit/test_closing_connection.py and
every e2e test fail if an upgrade changes them.
"""
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer


class InboxConsumer(AsyncWebsocketConsumer):
    """An AsyncWebsocketConsumer run from an inbox. Subclasses give `start(receive,
    send)`, returning the inbox to run (its other sources put into it themselves) or
    None when the connection was answered already, `stopped()`, run however the
    consumer ends, and `dispatch_other(message)` for messages that are not
    `websocket.*`."""

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.base_send = send
        inbox = await self.start(receive, send)
        if inbox is None:
            return
        try:
            await inbox.run([receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            await self.stopped()

    async def dispatch(self, message):
        """A `websocket.*` message to its handler (websocket_connect, websocket_receive,
        websocket_disconnect), anything else to `dispatch_other`; no database hop."""
        if message["type"].startswith("websocket."):
            await getattr(self, get_handler_name(message))(message)
        else:
            await self.dispatch_other(message)

    async def start(self, receive, send):
        raise NotImplementedError

    async def stopped(self):
        raise NotImplementedError

    async def dispatch_other(self, message):
        raise NotImplementedError
