"""The JetStream stream `EVENTS` (subjects `events.>`) and the workers' durable consumer
`relay` in the queue group `relay` (PROTOCOL.md "Wiring")."""
from django.conf import settings
from nats.js import api
from nats.js.errors import BadRequestError, NotFoundError

STREAM = "EVENTS"
SUBJECTS = ["events.>"]
QUEUE_GROUP = "relay"
STREAM_MAX_AGE_S = 3600.0  # events older than this are dropped, delivered or not; history remains


def stream_config(*, replicas: int, max_bytes: int, name: str = STREAM, subjects: list[str] = SUBJECTS) -> api.StreamConfig:
    """The EVENTS stream's configuration (`name` and `subjects` other than EVENTS' only
    for a test's stream of its own): file storage, `replicas` replicas, limits
    retention (events are kept, acked or not, until they are STREAM_MAX_AGE_S old or
    the stream holds `max_bytes` bytes, the oldest going first; publishing is never
    refused for space).

    Limits rather than work-queue retention: a work-queue stream deletes each event from
    its file store when the worker acks it, which cost NATS about 10 µs more per event
    (medians 47 against 36 µs, a quarter of its CPU; docs/performance.md, "Decisions").
    A live message whose event the limits dropped before a worker took it still reaches
    its user's connections: they catch up from the history (deliver/behind.py)."""
    return api.StreamConfig(
        name=name,
        subjects=subjects,
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        storage=api.StorageType.FILE,
        max_age=STREAM_MAX_AGE_S,
        max_bytes=max_bytes,
        duplicate_window=120.0,
        num_replicas=replicas,
    )


async def ensure_stream(js) -> None:
    """Create the EVENTS stream when it does not exist yet (idempotent, race-safe), as
    `stream_config` with RELAY_EVENTS_REPLICAS replicas (3 on a 3-node NATS cluster) and
    RELAY_EVENTS_MAX_BYTES bytes at most. An existing stream keeps its configuration."""
    try:
        await js.stream_info(STREAM)
        return
    except NotFoundError:
        pass
    config = stream_config(replicas=settings.RELAY_EVENTS_REPLICAS, max_bytes=settings.RELAY_EVENTS_MAX_BYTES)
    try:
        await js.add_stream(config)
    except BadRequestError as exc:  # created by another process in the meantime
        if exc.err_code != 10058:
            raise
