"""The per-connection sequencing rule that makes live delivery exactly once and in order.

Each stored message records the ts of the message before it in its channel (`prev`,
set atomically with the ts in lua/publish.lua). A connection remembers, per subscribed
channel, the highest ts it has sent (`last`). Workers and JetStream redelivery may hand
events over late, twice or out of order; this rule turns them back into one ordered,
gapless sequence:

- ts <= last: already sent -> DROP;
- prev <= last: nothing is missing between what was sent and this message -> DELIVER;
- otherwise messages in (last, ts) have not arrived yet -> FILL them from the history
  (Redis) in order, then this one; the late events are dropped when they arrive.
"""
from enum import Enum


class Plan(Enum):
    DROP = "drop"
    DELIVER = "deliver"
    FILL = "fill"


def plan(last: int, ts: int, prev: int) -> Plan:
    """Decide what to do with a live message of ts `ts` whose predecessor is `prev`.

    `last` is the highest ts (Unix ns) this connection sent for the channel (0 if none).
    """
    if ts <= last:
        return Plan.DROP
    if prev <= last:
        return Plan.DELIVER
    return Plan.FILL

