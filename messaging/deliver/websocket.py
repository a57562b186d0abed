"""The WebSocket endpoint `/ws/` (PROTOCOL.md "WebSocket"): a thin adapter of the
session core (session.py) to Channels and daphne.

The consumer turns client frames into commands (size limit, JSON, protocol/frames.py)
and hands them to its session; its transport writes the session's frames as JSON text
frames, straight to daphne's connection when overrides/daphne_frames.py can. Frames and
channel-layer messages reach it through one inbox (link.py), dispatched one at a time
in arrival order (overrides/channels_consumer.py).
"""
import logging

import orjson
from autobahn.exception import Disconnected
from channels.exceptions import StopConsumer
from django.conf import settings

from messaging.aio import in_background
from messaging.deliver import link as layer_link
from messaging.deliver.services import Services
from messaging.deliver.session import Session, Status
from messaging.deliver.transport import TransportClosed
from messaging.protocol import frames, limits
from messaging.protocol.errors import RelayError, Unavailable
from messaging.state.backends import REDIS_ERRORS
from overrides import daphne_frames
from overrides.channels_consumer import InboxConsumer

log = logging.getLogger(__name__)


class WebSocketTransport:
    """transport.Transport over a Channels WebSocket consumer and daphne's `send`."""

    def __init__(self, consumer: InboxConsumer, send):
        self.consumer = consumer
        self.write_text = daphne_frames.writer_for(send)
        self.backlog = daphne_frames.backlog_for(send) or (lambda: 0)

    async def send(self, frame: dict) -> None:
        """One JSON text frame; an unencodable frame becomes a `bad_frame` error frame
        instead (never daphne's 1011). Raises TransportClosed once autobahn closes."""
        try:
            data = orjson.dumps(frame)
        except TypeError:  # validation keeps client strings encodable; never 1011 if not
            log.exception("unencodable frame of type %s", frame.get("type"))
            data = orjson.dumps(frames.error_frame(RelayError("bad_frame", "The frame could not be answered.")))
        if self.write_text is None or not self.write_text(data):
            try:
                await self.consumer.send(text_data=data.decode())
            except Disconnected:  # autobahn: closing, no frame can reach the client any more
                raise TransportClosed from None

    async def close(self, code: int) -> None:
        """The WebSocket close handshake with `code`."""
        await self.consumer.close(code)


class ChatConsumer(InboxConsumer):
    """One WebSocket connection: its session, fed by its frames and its layer link."""

    session: Session | None = None

    async def start(self, receive, send):
        """The session and its layer link; when Redis cannot make the layer's channel,
        the connection is accepted and closed with 4503, never daphne's 1011."""
        self.link = layer_link.LayerLink()
        self.session = Session(WebSocketTransport(self, send), self.link, Services.real())
        try:
            await self.link.open()
        except REDIS_ERRORS:
            await receive()  # websocket.connect
            await self.accept()
            await self.session.open(None, Unavailable("Redis"))
            return None
        return self.link.inbox

    async def stopped(self):
        """Release the session if daphne ended the consumer before its disconnect, and
        give the layer channel back, both in the background."""
        if self.session.status is not Status.CLOSED:
            in_background(self.session.release())
        in_background(self.link.close())

    async def dispatch(self, message):
        """As InboxConsumer's; a closed transport ends the consumer quietly."""
        try:
            await super().dispatch(message)
        except TransportClosed:
            raise StopConsumer from None

    async def dispatch_other(self, message):
        """A channel-layer message, to the session (link.dispatch)."""
        await layer_link.dispatch(self.session, message)

    async def connect(self):
        """websocket.connect: accept, then open the session of the handshake's user."""
        await self.accept()
        auth = self.scope["relay_auth"]
        await self.session.open(auth.user, RelayError(auth.error, auth.reason) if auth.error else None)

    async def disconnect(self, code):
        """websocket.disconnect (`code`: the WebSocket close code): release the session."""
        await self.session.release()

    async def receive(self, text_data=None, bytes_data=None):
        """A client frame: size limit (too_large, close 4413), JSON, then the command
        to the session; anything wrong is answered with an error frame echoing `ref`,
        and the connection stays open."""
        obj = None
        try:
            if frames.frame_too_large(text_data if text_data is not None else bytes_data):
                raise RelayError("too_large", f"Frames are limited to {limits.MAX_FRAME_BYTES} bytes.")
            if text_data is None:
                raise RelayError("bad_frame", "Binary frames are not accepted; send JSON text.")
            obj = frames.decode(text_data)
            command = frames.parse_command(obj, settings.RELAY_MAX_MESSAGE_CHARS)
        except Exception as exc:  # never let a client frame end in daphne's 1011
            if self.session.status is not Status.OPEN:
                return
            if isinstance(exc, RelayError) and exc.code == "too_large":
                await self.session.replies.drain()
                return await self.session.close(exc, limits.CLOSE_TOO_LARGE)
            return await self.session.answer_error(exc, frames.safe_ref(obj))
        await self.session.handle(command)
