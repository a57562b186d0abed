"""The EVENTS stream's configuration (messaging/fanout/stream.py stream_config) on a real
nats-server: at its byte cap it keeps taking events (the oldest go) and a worker-style
queue subscription still gets each event once, in order; acked events stay (limits
retention: no delete per ack). relay_check names a work-queue stream made by an
earlier relay. A fan-out to a stopped NATS ends in Unavailable, not a hang."""
import asyncio
import os
import signal
import uuid

import nats
import pytest
from nats.js import api

from localservers import NatsServer
from messaging.fanout.stream import QUEUE_GROUP, STREAM, SUBJECTS, ensure_stream, stream_config
from messaging.ops.checks import check_nats
from messaging.protocol.errors import Unavailable
from messaging.publish import jetstream
from messaging.publish.jetstream import PipelinedPublisher, start_fan_out
from messaging.state.backends import connect_nats

CAP = 64 * 1024


async def test_at_its_byte_cap_the_stream_takes_every_event_and_the_consumer_gets_each_once(nats_server):
    prefix = f"ev{uuid.uuid4().hex[:8]}"
    name = prefix.upper()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(stream_config(replicas=1, max_bytes=CAP, name=name, subjects=[f"{prefix}.>"]))
    try:
        received: list[bytes] = []
        arrived = asyncio.Condition()

        async def on_event(msg):
            await msg.ack()
            async with arrived:
                received.append(msg.data)
                arrived.notify_all()

        await js.subscribe(f"{prefix}.>", queue="w", cb=on_event, manual_ack=True, stream=name,
                           config=api.ConsumerConfig(ack_wait=10, max_deliver=-1))
        publisher = PipelinedPublisher(nc)
        sent = []
        for batch in range(60):  # 3,000 events of about 150 bytes: seven times the cap
            payloads = [f'{{"batch": {batch}, "user": {i}, "pad": "{"x" * 100}"}}'.encode() for i in range(50)]
            for payload in payloads:  # one subject per user, as a fan-out
                await asyncio.wait_for(await publisher.publish([f"{prefix}.u{len(sent) % 50}"], payload), 10)
                sent.append(payload)
            async with arrived:  # the consumer keeps up: nothing is evicted before it is taken
                await asyncio.wait_for(arrived.wait_for(lambda: len(received) == len(sent)), 10)
        assert received == sent
        await nc.flush()
        info = await js.stream_info(name)
        assert info.state.bytes <= CAP
        assert info.state.messages > 0  # acked events are kept until the limits drop them
        assert info.state.first_seq > 1  # ... and the oldest were dropped at the cap
        consumer = await js.consumer_info(name, "w")
        assert consumer.num_pending == 0 and consumer.num_redelivered == 0
    finally:
        await js.delete_stream(name)
        await nc.close()


async def test_relay_check_warns_of_a_work_queue_stream_and_not_of_its_own(tmp_path):
    """Also of a byte limit other than the setting's, and of a missing consumer (one
    deleted while workers run is not made again by them)."""
    with NatsServer(tmp_path / "nats") as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await js.add_stream(api.StreamConfig(name=STREAM, subjects=SUBJECTS, retention=api.RetentionPolicy.WORK_QUEUE))
            old = await check_nats(server.url)
            await js.delete_stream(STREAM)
            await ensure_stream(js)
            await js.add_consumer(STREAM, api.ConsumerConfig(durable_name=QUEUE_GROUP, deliver_group=QUEUE_GROUP,
                                                             deliver_subject="relay.test.deliver"))
            new = await check_nats(server.url)
        finally:
            await nc.close()
    assert [f.message for f in old if f.level == "warning"] == [
        "stream EVENTS has work-queue retention (made by an earlier relay): it works, at more NATS CPU per event; "
        "see docs/deploy.md to recreate it.",
        "stream EVENTS keeps at most -1 bytes, but RELAY_EVENTS_MAX_BYTES is 268435456, which applies only when the "
        "relay creates the stream: `nats stream edit EVENTS --max-bytes 268435456`.",
        "consumer relay does not exist: no relay_worker has run yet, or it was deleted (running workers do not make it "
        "again: restart them).",
    ]
    assert [f.level for f in new] == ["ok", "ok"]
    assert "stream EVENTS: 0 events kept; consumer relay: 0 waiting, 0 awaiting ack." in new[1].message


@pytest.mark.timeout(90)
async def test_fan_outs_to_a_stopped_nats_end_in_unavailable_when_its_buffer_is_full(tmp_path, monkeypatch):
    """NATS SIGSTOPped keeps its TCP connection open: the kernel's buffers and nats-py's
    2 MiB fill, and nats-py then waits for room without a limit: without the bound,
    publishes get no answer for as long as NATS is stopped."""
    monkeypatch.setattr(jetstream, "PUBLISH_TIMEOUT_S", 1.0)
    with NatsServer(tmp_path / "nats") as server:
        nc = await connect_nats(server.url, allow_reconnect=False)
        await ensure_stream(nc.jetstream())
        publisher = PipelinedPublisher(nc)
        users, payload = [f"u{i}" for i in range(50)], b"x" * 40_000  # 2 MB per fan-out
        await asyncio.wait_for(await start_fan_out(publisher, users, b"warm-up"), 10)
        os.kill(server.pid, signal.SIGSTOP)
        outcomes = []
        try:
            for _ in range(8):  # 16 MB: more than the socket buffers and nats-py's hold
                try:
                    await (await start_fan_out(publisher, users, payload))
                    outcomes.append("acked")
                except Unavailable as exc:
                    outcomes.append(str(exc))
        finally:
            os.kill(server.pid, signal.SIGCONT)
            await nc.close()
    assert outcomes == [str(Unavailable("NATS"))] * 8
