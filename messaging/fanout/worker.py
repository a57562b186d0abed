"""The relay worker: JetStream `events.>` -> channel-layer group `user.<id>`.

Workers share the durable push consumer `relay` in the queue group `relay`, so each
event is handled by one worker. The worker hands events over in batches: whatever has
arrived while it handed over the previous batch (up to MAX_BATCH events) is grouped by
user, and each user's events, in arrival order, go to `user.<id>` as one channel-layer
message `{"type": "relay.events", "data": [<event payload>, ...]}`. The more the worker
has to do, the larger its batches, so the per-message cost of the channel layer (one
Redis PUBLISH, one message for each daphne process to parse and dispatch) is shared by
more deliveries exactly when it matters.

Events are acked only after their group_send returned; a worker that dies before acking
has its events redelivered to another worker after RELAY_WORKER_ACK_WAIT seconds
(connections drop what they already delivered, deliver/sequencing.py).
"""
import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer
from nats.js import api
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from messaging import metrics
from messaging.fanout.stream import QUEUE_GROUP, SUBJECTS, ensure_stream
from messaging.protocol.events import user_of_subject
from messaging.state.backends import connect_nats
from messaging.state.keys import user_group
from overrides.nats_batch import ack_all

log = logging.getLogger(__name__)
READY_LINE = "relay_worker ready"
MAX_BATCH = 1000  # events handed over per round at most (bounds one channel-layer message)


async def connect_until_up(url: str):
    """Connect to NATS, retrying with backoff (0.2 s up to 2 s) until it answers."""
    async for attempt in AsyncRetrying(
        wait=wait_exponential(multiplier=0.2, max=2), retry=retry_if_exception_type(Exception), reraise=True
    ):
        with attempt:
            return await connect_nats(url)


def delivery_count(reply: str) -> int:
    """How many times JetStream has delivered the message whose ack subject is `reply`
    (1 on the first delivery). It is the <delivered> token of
    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>`,
    or of the form with `<domain>.<account hash>.` after `$JS.ACK.` (ADR-15), read as
    nats-py's Msg.metadata reads it, without the dataclasses and datetime it builds
    (3.5 µs per event). Raises ValueError or IndexError for a subject of another shape."""
    tokens = reply.split(".")
    return int(tokens[4] if len(tokens) == 9 else tokens[6])


def group_by_user(msgs: list) -> dict[str, list]:
    """NATS messages on `events.<user>` grouped by user, arrival order kept within a user."""
    by_user: dict[str, list] = {}
    for msg in msgs:
        by_user.setdefault(user_of_subject(msg.subject), []).append(msg)
    return by_user


async def hand_over(layer, msgs: list, ack: Callable[[list], Awaitable[None]]) -> None:
    """Send a batch of events to their users' groups, one channel-layer message per user
    in one Redis command (the layer's group_send_many, overrides/channels_redis_layer.py),
    then ack them all with `ack(msgs)` (overrides/nats_batch.ack_all on the worker's
    connection). When Redis
    fails the batch is nak'ed with a 1 s delay, so JetStream redelivers it (connections
    drop what they already delivered). Raises nats-py's errors when the acks or naks
    cannot be sent (NATS gone): the unacked events are redelivered after ack_wait.
    Counts relay_worker_redeliveries_total for every redelivered event received (so it
    rises while hand-overs fail too) and relay_worker_events_total once acked."""
    redelivered = sum(delivery_count(msg.reply) > 1 for msg in msgs)
    if redelivered:
        metrics.REDELIVERIES.inc(redelivered)
    by_user = group_by_user(msgs)
    sends = [(user_group(userid), {"type": "relay.events", "data": [m.data for m in user_msgs]})
             for userid, user_msgs in by_user.items()]
    try:
        await layer.group_send_many(sends)
    except Exception as exc:
        log.warning("group_send failed (%r); %d event(s) will be redelivered", exc, len(msgs))
        for msg in msgs:
            await msg.nak(delay=1.0)
        return
    await ack(msgs)  # out together in nats-py's next flush
    metrics.EVENTS_HANDLED.inc(len(msgs))


async def hand_over_forever(layer, queue: asyncio.Queue, ack: Callable[[list], Awaitable[None]]) -> None:
    """Take every event that has arrived (at least one, at most MAX_BATCH) and hand it
    over (`hand_over`)."""
    while True:
        batch = [await queue.get()]
        while len(batch) < MAX_BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        try:
            await hand_over(layer, batch, ack)
        except Exception:  # e.g. acks that could not be sent: JetStream redelivers after ack_wait
            log.exception("handing over %d event(s) failed; unacked events will be redelivered", len(batch))
        finally:
            for _ in batch:
                queue.task_done()


async def run(nats_url: str, ack_wait: float, stop: asyncio.Event, ready=None) -> None:
    """Consume events until `stop` is set, then drain (hand over and ack what arrived) and return.

    `ready`, if given, is called once the subscription is live.
    """
    nc = await connect_until_up(nats_url)
    js = nc.jetstream()
    # A fresh NATS cluster may have no JetStream leader (or no placement) for a moment.
    async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.2, max=2), stop=stop_after_delay(120), reraise=True):
        with attempt:
            await ensure_stream(js)
    queue: asyncio.Queue = asyncio.Queue()

    async def arrived(msg):
        queue.put_nowait(msg)

    config = api.ConsumerConfig(ack_wait=ack_wait, max_deliver=-1, max_ack_pending=20_000)
    sub = await js.subscribe(SUBJECTS[0], queue=QUEUE_GROUP, cb=arrived, manual_ack=True, config=config)
    handler = asyncio.create_task(hand_over_forever(get_channel_layer(), queue, functools.partial(ack_all, nc)))
    log.info("consuming %s in queue group %s", SUBJECTS[0], QUEUE_GROUP)
    if ready:
        ready()
    await stop.wait()
    log.info("draining")
    await sub.drain()  # no new events; those already received are in the queue
    await queue.join()  # ... and are handed over and acked before the connection closes
    handler.cancel()
    await nc.drain()
