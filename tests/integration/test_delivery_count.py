"""messaging.fanout.worker.delivery_count on real JetStream ack subjects: it agrees with
nats-py's Msg.metadata on a first delivery and on a redelivery."""
import uuid

import nats
from nats.js import api

from messaging.fanout.worker import delivery_count


async def test_delivery_count_agrees_with_nats_py_on_first_delivery_and_redelivery(nats_server):
    name = f"DC{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(api.StreamConfig(name=name, subjects=[f"{name}.>"]))
    try:
        await js.publish(f"{name}.a", b"x")
        sub = await js.pull_subscribe(f"{name}.a", "c", stream=name)
        [first] = await sub.fetch(1, timeout=5)
        await first.nak()
        [again] = await sub.fetch(1, timeout=5)
        await again.ack()
        assert [delivery_count(m.reply) for m in (first, again)] == [1, 2]
        assert [m.metadata.num_delivered for m in (first, again)] == [1, 2]
    finally:
        await js.delete_stream(name)
        await nc.close()
