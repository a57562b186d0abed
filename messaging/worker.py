"""The relay worker: JetStream `events.>` -> channel-layer group `user.<id>`.

Workers share the durable push consumer `relay` in the queue group `relay`, so each
event is handled by one worker. An event is acked only after group_send returned;
a worker that dies before acking has its events redelivered to another worker after
RELAY_WORKER_ACK_WAIT seconds (connections drop what they already delivered).
"""
import asyncio
import logging

from channels.layers import get_channel_layer
from nats.js import api
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from . import metrics
from .backends import connect_nats
from .events import QUEUE_GROUP, SUBJECTS, ensure_stream

log = logging.getLogger(__name__)
READY_LINE = "relay_worker ready"


async def connect_until_up(url: str):
    """Connect to NATS, retrying with backoff (0.2 s up to 2 s) until it answers."""
    async for attempt in AsyncRetrying(
        wait=wait_exponential(multiplier=0.2, max=2), retry=retry_if_exception_type(Exception), reraise=True
    ):
        with attempt:
            return await connect_nats(url)


async def run(nats_url: str, ack_wait: float, stop: asyncio.Event, ready=None) -> None:
    """Consume events until `stop` is set, then drain (finish in-flight events) and return.

    `ready`, if given, is called once the subscription is live.
    """
    nc = await connect_until_up(nats_url)
    js = nc.jetstream()
    # A fresh NATS cluster may have no JetStream leader (or no placement) for a moment.
    async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.2, max=2), stop=stop_after_delay(120), reraise=True):
        with attempt:
            await ensure_stream(js)
    layer = get_channel_layer()

    async def handle(msg):
        userid = msg.subject.split(".", 1)[1]
        try:
            await layer.group_send(f"user.{userid}", {"type": "relay.event", "data": msg.data.decode()})
        except Exception as exc:  # Redis down: let JetStream redeliver shortly
            log.warning("group_send failed (%r); the event will be redelivered", exc, extra={"user": userid})
            await msg.nak(delay=1.0)
            return
        await msg.ack()
        metrics.EVENTS_HANDLED.inc()
        if msg.metadata.num_delivered > 1:
            metrics.REDELIVERIES.inc()

    config = api.ConsumerConfig(ack_wait=ack_wait, max_deliver=-1, max_ack_pending=20_000)
    await js.subscribe(SUBJECTS[0], queue=QUEUE_GROUP, cb=handle, manual_ack=True, config=config)
    log.info("consuming %s in queue group %s", SUBJECTS[0], QUEUE_GROUP)
    if ready:
        ready()
    await stop.wait()
    log.info("draining")
    await nc.drain()
