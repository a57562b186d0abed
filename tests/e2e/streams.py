"""What the relay handed to NATS: the events of one user in the JetStream stream EVENTS
(kept, acked or not, under its limits retention)."""
import nats

from messaging.fanout.stream import STREAM
from messaging.protocol.events import subject_for


async def events_for(nats_url: str, userid: str) -> int:
    """How many events the EVENTS stream holds on `events.<userid>`."""
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(STREAM, subjects_filter=subject_for(userid))
        return (info.state.subjects or {}).get(subject_for(userid), 0)
    finally:
        await nc.close()
