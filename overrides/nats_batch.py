"""Many NATS publishes handed to nats-py's connection as one command.

nats-py's `Client.publish` validates the subjects, formats one PUB command, appends it
to the connection's pending buffer and looks at the flusher, for every message: about
2.4 µs each on the benchmark's machine. A fan-out publishes one message per subscriber
and a worker acks every event; `publish_many` and `ack_all` make the connection checks
once, write all PUB commands as one bytes object and kick the flusher once (0.15 to
0.25 µs per message; docs/performance.md, "Decisions"). What reaches NATS is the same PUB
commands, in the same order, behind whatever was published before on the connection.

Subjects are not checked here: the relay validates user ids before they reach a subject
(validation.py), and reply subjects are the relay's own inboxes or JetStream's ack
subjects. It uses nats-py's private `_send_command`, `_flush_queue`, `_flush_pending`,
`_pending_data_size`, `_max_pending_size` and `_max_payload`, as of nats-py 2.16.0
(pinned); tests/integration/test_nats_batch.py fails if an upgrade changes them.
"""
from nats import errors


async def publish_many(nc, subjects: list[str], payload: bytes, reply: str) -> None:
    """Publish `payload` with reply subject `reply` on each of `subjects`, in list order,
    as nats-py's `publish` would one after another. Raises what `publish` raises when
    the connection cannot take them (ConnectionClosedError, ConnectionDrainingError,
    MaxPayloadError, OutboundBufferLimitError while reconnecting); then none was sent."""
    if not subjects:
        return
    tail = b" %b %d\r\n%b\r\n" % (reply.encode(), len(payload), payload)
    data = b"".join([b"PUB " + subject.encode() + tail for subject in subjects])
    await _send(nc, data, len(payload))
    nc.stats["out_msgs"] += len(subjects)
    nc.stats["out_bytes"] += len(subjects) * len(payload)


async def ack_all(nc, msgs: list) -> None:
    """Ack each JetStream message of `msgs` (nats-py Msgs of connection `nc`), as
    `Msg.ack` would one after another: an empty message on its reply subject. Raises
    ValueError for a message without a reply subject (not from JetStream; nothing is
    sent then), or what `publish_many` raises."""
    if any(not msg.reply for msg in msgs):
        raise ValueError("a message without a reply subject cannot be acked")
    await _send(nc, b"".join([b"PUB " + msg.reply.encode() + b" 0\r\n\r\n" for msg in msgs]), 0)
    nc.stats["out_msgs"] += len(msgs)


async def _send(nc, data: bytes, payload_size: int) -> None:
    """Append `data` (whole PUB commands) to the connection's pending buffer and kick its
    flusher, after the checks nats-py's `publish` makes."""
    if nc.is_closed:
        raise errors.ConnectionClosedError
    if nc.is_draining_pubs:
        raise errors.ConnectionDrainingError
    if payload_size > nc._max_payload:
        raise errors.MaxPayloadError
    if not nc.is_connected and (nc._max_pending_size <= 0 or len(data) + nc._pending_data_size > nc._max_pending_size):
        raise errors.OutboundBufferLimitError  # reconnecting, and the buffer cannot take them
    await nc._send_command(data)
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()
