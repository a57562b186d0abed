"""A reply that meets a connection already closing (the client's Close frame came in
the same read as its ping, or the relay refused the connection): autobahn raises
Disconnected; the consumer ends quietly instead of as daphne's "Exception inside
application". And the close for a client that does not read (4408)."""
import json
import logging

import pytest
from autobahn.exception import Disconnected
from channels.exceptions import StopConsumer

from messaging.deliver.link import LayerLink
from messaging.deliver.session import Status
from messaging.deliver.transport import TransportClosed
from messaging.deliver.websocket import ChatConsumer, WebSocketTransport
from messaging.metrics import WEB
from messaging.protocol.errors import RelayError

from .fakes import World, user


async def closing_consumer() -> ChatConsumer:
    """A consumer with an open session whose connection is closing: every send raises
    autobahn's Disconnected."""
    async def send(message):
        raise Disconnected("Attempt to send on a closed protocol")

    consumer = ChatConsumer()
    consumer.base_send = send
    world = World(transport=WebSocketTransport(consumer, send))
    consumer.session = world.session
    consumer.session.user, consumer.session.status = user(), Status.OPEN
    return consumer


async def test_a_frame_sent_on_a_closing_connection_ends_the_consumer():
    consumer = await closing_consumer()
    with pytest.raises(TransportClosed):
        await consumer.session.send({"type": "pong"})
    consumer.session.delivery.start("c", 0, 1)
    with pytest.raises(StopConsumer):  # its `unsubscribed` frame meets the closing connection
        await consumer.dispatch({"type": "relay.unsubscribed", "channel": "c", "generation": 1})


async def test_a_ping_answered_on_a_closing_connection_ends_it_without_an_error_log(caplog):
    consumer = await closing_consumer()
    with caplog.at_level(logging.DEBUG, logger="messaging"), pytest.raises(StopConsumer):
        await consumer.dispatch({"type": "websocket.receive", "text": json.dumps({"type": "ping", "ref": 1})})
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_refusal_on_a_closing_connection_returns_quietly():
    consumer = await closing_consumer()
    closed = []

    async def close(code=None):
        closed.append(code)

    consumer.close = close
    await consumer.session.close(RelayError("unauthorized", "The token has expired."), 4401)
    assert closed == [] and consumer.session.status is Status.CLOSING  # no close; daphne's disconnect follows


@pytest.mark.parametrize("error", [
    RuntimeError("read() called while another coroutine is already waiting for incoming data"),
    ConnectionError("Connection lost."),
])
async def test_a_channel_that_cannot_be_given_back_is_one_warning(caplog, error):
    """Closing the layer channel while the layer's receive loop re-establishes redis-py's
    connection raises that RuntimeError into a background task, which daphne would log
    as "Task exception was never retrieved". Like a Redis outage, it is one warning
    line."""
    class Layer:
        async def close_channel(self, channel):
            raise error

    link = LayerLink(layer=Layer())
    link.channel_name = "specific.x!y"
    with caplog.at_level(logging.DEBUG, logger="messaging"):
        await link.close()
    assert [r.levelno for r in caplog.records if r.name.startswith("messaging")] == [logging.WARNING]


def session_with_backlog(waiting: list[int]):
    """A session on daphne's connection where `waiting[0]` bytes wait for the client:
    (session, frames written, close codes sent)."""
    written, closed = [], []
    consumer = ChatConsumer()
    transport = WebSocketTransport(consumer, None)
    transport.write_text = lambda data: written.append(data) or True
    transport.backlog = lambda: waiting[0]

    async def close(code=None):
        closed.append(code)

    consumer.close = close
    session = World(transport=transport).session
    session.user, session.status = user(), Status.OPEN
    return session, written, closed


def slow_closes() -> float:
    return WEB.get_sample_value("relay_slow_consumer_closes_total") or 0.0


async def test_a_frame_for_a_client_that_does_not_read_closes_it_with_4408_once(settings, caplog):
    """The limit is on what already waits: frames are written while no more than it waits,
    a frame larger than it too when nothing waits (a 1,000-message history page can be
    17 MB); past it the frame is not written and the connection is closed, once."""
    settings.RELAY_MAX_OUTGOING_BYTES = 1000
    waiting = [0]
    session, written, closed = session_with_backlog(waiting)
    await session.send({"type": "history", "messages": ["m" * 5000]})
    waiting[0] = 1000
    await session.send({"type": "pong"})
    assert [len(frame) for frame in written] == [len(written[0]), len(b'{"type":"pong"}')] and len(written[0]) > 5000
    waiting[0], before = 1001, slow_closes()
    with caplog.at_level(logging.INFO, logger="messaging"):
        for _ in range(3):
            with pytest.raises(TransportClosed):
                await session.send({"type": "message", "message": {"text": "x"}})
    assert len(written) == 2 and closed == [4408] and session.status is Status.CLOSING
    assert slow_closes() == before + 1
    assert [r.getMessage() for r in caplog.records] == [
        "closing with 4408: 1001 bytes wait for a client that does not read them (limit 1000)"]
