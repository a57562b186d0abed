"""The fan-out: a message's event published on `events.<user>` for each subscriber,
through pipelined JetStream publishes whose pub acks are counted, not matched one by one.

A fan-out to N users is N JetStream messages, each answered by a pub ack. nats-py's
`publish_async` gives every message its own reply subject, NUID, future and
semaphore slot, and parses every ack into a PubAck dataclass. Here the N messages of a
batch share one reply subject under a single wildcard subscription, go to the
connection as one command (overrides/nats_batch.py), and an ack is only looked at for an error.
In the benchmark's fanout (docs/performance.md) the counted acks took daphne from about
82 to 64 µs of CPU per delivery. It is JetStream's ordinary publish
protocol (a publish with a reply subject gets a pub ack on it), not a new one.
"""
import asyncio
import itertools
import logging
from collections.abc import Awaitable

import orjson

from messaging.aio import retrieve_outcome
from messaging.protocol.errors import Unavailable
from messaging.protocol.events import subject_for
from overrides.nats_batch import publish_many

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0  # a fan-out's hand-over to NATS and its acks take at most this long


class JetStreamRefused(Exception):
    """JetStream answered a publish with an error (or no stream took the subject)."""


class _Batch:
    __slots__ = ("waiting", "future", "error")

    def __init__(self, waiting: int, future: asyncio.Future):
        self.waiting = waiting
        self.future = future
        self.error: str | None = None


class PipelinedPublisher:
    """Publishes batches of JetStream messages on one nats-py connection `nc`.

    Acks come to one subscription on `<inbox>.*`, made on first use (nats-py renews it
    after a reconnect); batch k uses the reply subject `<inbox>.k`. Use it from the
    connection's event loop.
    """

    def __init__(self, nc):
        self._nc = nc
        self._prefix: str | None = None
        self._tokens = itertools.count(1)
        self._batches: dict[str, _Batch] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        """How many batches are waiting for their acks."""
        return len(self._batches)

    async def _reply_prefix(self) -> str:
        if self._prefix is None:
            async with self._lock:
                if self._prefix is None:
                    inbox = self._nc.new_inbox()
                    await self._nc.subscribe(f"{inbox}.*", cb=self._on_ack)
                    self._prefix = f"{inbox}."
        return self._prefix

    async def publish(self, subjects: list[str], payload: bytes) -> Awaitable[None]:
        """Publish `payload` on each of `subjects` (in this order, behind any batch
        published before) without waiting for JetStream.

        Returns a future that resolves to None once JetStream acked every message, or
        raises JetStreamRefused when it refused one; cancel it (asyncio.wait_for does)
        to stop waiting. Raises nats-py's errors when the connection cannot take them.
        """
        future = asyncio.get_running_loop().create_future()
        if not subjects:
            future.set_result(None)
            return future
        prefix = await self._reply_prefix()
        token = str(next(self._tokens))
        self._batches[token] = _Batch(len(subjects), future)
        future.add_done_callback(lambda _: self._batches.pop(token, None))
        reply = prefix + token
        try:
            await publish_many(self._nc, subjects, payload, reply)
        except BaseException:
            future.cancel()  # forget the batch: its acks will not all come
            raise
        return future

    async def _on_ack(self, msg) -> None:
        batch = self._batches.get(msg.subject[len(self._prefix):])
        if batch is None or batch.future.done():
            return  # acks of a batch nobody waits for any more
        if not msg.data or b'"error"' in msg.data:  # an empty reply: no stream took it (503)
            batch.error = batch.error or _describe(msg.data)
        batch.waiting -= 1
        if batch.waiting == 0:
            if batch.error:
                batch.future.set_exception(JetStreamRefused(batch.error))
            else:
                batch.future.set_result(None)


def _describe(data: bytes) -> str:
    """A refusal's description from its reply (a JSON `{"error": {...}}` or empty)."""
    if not data:
        return "no stream for the subject (no responders)"
    try:
        return str(orjson.loads(data)["error"].get("description"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return repr(data[:200])


async def fan_out(publisher: PipelinedPublisher, userids, payload: bytes) -> None:
    """Publish `payload` on `events.<user>` for each user and wait for every JetStream
    ack (start_fan_out, then its acks). Raises Unavailable like start_fan_out."""
    await (await start_fan_out(publisher, userids, payload))


async def start_fan_out(publisher: PipelinedPublisher, userids, payload: bytes) -> asyncio.Task:
    """Publish `payload` on `events.<user>` for each user through `publisher` without
    waiting for JetStream's acks; returns an asyncio task that completes when all are
    acked (a task, so nothing is left un-awaited when its caller goes away first).

    Events handed over by one call leave before those of a later call. Raises
    Unavailable when NATS cannot take them; handing them to a connection of
    state/backends.connect_nats takes PUBLISH_TIMEOUT_S at most (its `flush_timeout`).
    The task raises Unavailable when JetStream refuses one or the acks take longer than
    PUBLISH_TIMEOUT_S.
    """
    try:
        acked = await publisher.publish([subject_for(userid) for userid in userids], payload)
    except Exception as exc:  # connection closed or draining
        raise _unavailable(exc) from exc
    task = asyncio.ensure_future(_within_timeout(acked))
    task.add_done_callback(retrieve_outcome)
    return task


async def _within_timeout(acked: Awaitable[None]) -> None:
    try:
        await asyncio.wait_for(acked, PUBLISH_TIMEOUT_S)
    except Exception as exc:  # timeouts, refusals
        raise _unavailable(exc) from exc


def _unavailable(exc: Exception) -> Unavailable:
    log.warning("JetStream publish failed: %r", exc)
    return Unavailable("NATS")
