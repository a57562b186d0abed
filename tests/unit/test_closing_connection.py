"""A reply that meets a connection already closing (the client's Close frame came in
the same read as its ping, or the relay refused the connection): autobahn raises
Disconnected; the consumer ends quietly instead of as daphne's "Exception inside
application"."""
import logging
from types import SimpleNamespace

import pytest
from autobahn.exception import Disconnected
from channels.exceptions import StopConsumer

from messaging.deliver.websocket import ChatConsumer
from messaging.protocol.errors import RelayError
from messaging.metrics import WEB
from messaging.deliver.replies import OrderedReplies


def closing_consumer() -> ChatConsumer:
    """A consumer whose connection is closing: every send raises autobahn's Disconnected."""
    async def send(message):
        raise Disconnected("Attempt to send on a closed protocol")

    consumer = ChatConsumer()
    consumer.base_send, consumer.write_text = send, None
    consumer.user, consumer.closed, consumer.connection_id = object(), False, "c1"
    consumer.replies = OrderedReplies(consumer.send_frame, 4)
    return consumer


async def test_a_frame_sent_on_a_closing_connection_ends_the_consumer():
    with pytest.raises(StopConsumer):
        await closing_consumer().send_frame({"type": "pong"})


async def test_a_ping_answered_on_a_closing_connection_ends_it_without_an_error_log(caplog):
    consumer = closing_consumer()
    with caplog.at_level(logging.DEBUG, logger="messaging"), pytest.raises(StopConsumer):
        await consumer.receive(text_data='{"type": "ping", "ref": 1}')
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_refusal_on_a_closing_connection_returns_quietly():
    consumer = closing_consumer()
    closed = []

    async def close(code=None):
        closed.append(code)

    consumer.close = close
    await consumer.refuse(RelayError("unauthorized", "The token has expired."), 4401)
    assert closed == [] and consumer.closed  # no second close; daphne's disconnect follows


@pytest.mark.parametrize("error", [
    RuntimeError("read() called while another coroutine is already waiting for incoming data"),
    ConnectionError("Connection lost."),
])
async def test_a_channel_that_cannot_be_given_back_is_one_warning(caplog, error):
    """Closing the layer channel while the layer's receive loop re-establishes redis-py's
    connection raises that RuntimeError into a background task, which daphne would log
    as "Task exception was never retrieved". Like a Redis outage, it is one warning
    line."""
    consumer = closing_consumer()
    consumer.user, consumer.channel_name = SimpleNamespace(id="u1"), "specific.x!y"

    class Layer:
        async def close_channel(self, channel):
            raise error

    consumer.channel_layer = Layer()
    with caplog.at_level(logging.DEBUG, logger="messaging"):
        await consumer.close_layer_channel()
    assert [r.levelno for r in caplog.records if r.name.startswith("messaging")] == [logging.WARNING]


def consumer_with_backlog(waiting: list[int]) -> tuple[ChatConsumer, list, list]:
    """A consumer on daphne's connection where `waiting[0]` bytes wait for the client:
    (consumer, frames written, close codes sent)."""
    written, closed = [], []

    async def close(code=None):
        closed.append(code)

    consumer = ChatConsumer()
    consumer.write_text = lambda data: written.append(data) or True
    consumer.backlog = lambda: waiting[0]
    consumer.close = close
    consumer.user, consumer.closed, consumer.connection_id = SimpleNamespace(id="u1"), False, "c1"
    return consumer, written, closed


def slow_closes() -> float:
    return WEB.get_sample_value("relay_slow_consumer_closes_total") or 0.0


async def test_a_frame_for_a_client_that_does_not_read_closes_it_with_4408_once(settings, caplog):
    """The limit is on what already waits: frames are written while no more than it waits,
    a frame larger than it too when nothing waits (a 1,000-message history page can be
    17 MB); past it the frame is not written and the connection is closed, once."""
    settings.RELAY_MAX_OUTGOING_BYTES = 1000
    waiting = [0]
    consumer, written, closed = consumer_with_backlog(waiting)
    await consumer.send_frame({"type": "history", "messages": ["m" * 5000]})
    waiting[0] = 1000
    await consumer.send_frame({"type": "pong"})
    assert [len(frame) for frame in written] == [len(written[0]), len(b'{"type":"pong"}')] and len(written[0]) > 5000
    waiting[0], before = 1001, slow_closes()
    with caplog.at_level(logging.INFO, logger="messaging"):
        for _ in range(3):
            with pytest.raises(StopConsumer):
                await consumer.send_frame({"type": "message", "message": {"text": "x"}})
    assert len(written) == 2 and closed == [4408] and consumer.closed
    assert slow_closes() == before + 1
    assert [r.getMessage() for r in caplog.records] == [
        "closing with 4408: 1001 bytes wait for a client that does not read them (limit 1000)"]
