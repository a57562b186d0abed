"""Names and sizes of the systems and scenarios (full and ``--quick``)."""
from __future__ import annotations

import copy

SYSTEMS = ["relay", "channels_tutorial", "pocketbase_realtime", "nats_raw"]
BASELINE = "channels_tutorial"
SCENARIOS = ["fanout", "rooms", "latency", "replay", "idle"]

# Text of every benchmark message: "<publisher>:<seq>:<send time ns>:" padded with
# dots to this many characters, so every system carries the same payload.
MESSAGE_CHARS = 100

# The scenarios at the sizes of the benchmark's definition (``--full-size``). On a 2-core
# machine three rounds of these for four systems take about 25 minutes (every system but
# raw NATS drains a backlog for tens of seconds in `latency`; docs/performance.md), so
# the default run uses DEFAULT below: the same shapes, fewer messages, a lower rate.
FULL_SIZE = {
    # 1 channel, 100 subscribers, 1 publisher, 1,000 messages offered as fast as accepted.
    "fanout": {"subscribers": 100, "messages": 1000, "deadline_s": 240.0},
    # 100 channels of 2 users; each user publishes 20 (and receives the room's 40).
    "rooms": {"rooms": 100, "messages_per_user": 20, "deadline_s": 120.0},
    # 1 channel, 50 subscribers, 200 messages per second for 10 seconds (paced, open loop).
    "latency": {"subscribers": 50, "rate": 200, "duration_s": 10, "deadline_s": 240.0},
    # A subscriber resuming 10,000 missed messages (pages of 1,000).
    "replay": {"messages": 10000, "page": 1000, "deadline_s": 120.0},
    # 2,000 open (subscribed) connections.
    "idle": {"connections": 2000, "settle_s": 3.0, "hold_s": 5.0},
}

# The default run: fits in 15 minutes on this project's 2-core machine (3 rounds, 4 systems).
DEFAULT = {
    "fanout": {"subscribers": 100, "messages": 100, "deadline_s": 60.0},
    "rooms": {"rooms": 100, "messages_per_user": 10, "deadline_s": 60.0},
    "latency": {"subscribers": 50, "rate": 20, "duration_s": 10, "deadline_s": 60.0},
    "replay": {"messages": 10000, "page": 1000, "deadline_s": 60.0},
    "idle": {"connections": 2000, "settle_s": 2.0, "hold_s": 3.0},
}

QUICK = {
    "fanout": {"subscribers": 10, "messages": 50, "deadline_s": 30.0},
    "rooms": {"rooms": 5, "messages_per_user": 5, "deadline_s": 30.0},
    "latency": {"subscribers": 5, "rate": 50, "duration_s": 1, "deadline_s": 30.0},
    "replay": {"messages": 300, "page": 100, "deadline_s": 30.0},
    "idle": {"connections": 50, "settle_s": 0.5, "hold_s": 0.5},
}

# Load-generator knobs shared by all scenarios.
COMMON = {
    "window": 32,           # outstanding publishes per publisher (relay acks, PocketBase requests)
    "connect_concurrency": 50,
    "quiet_s": 5.0,         # a run ends when no delivery came for this long (the rest: lost)
    "message_chars": MESSAGE_CHARS,
    "settle_max_s": 60.0,   # between runs, wait up to this long for the servers to go idle
}
COMMON_QUICK = {**COMMON, "quiet_s": 2.0, "settle_max_s": 10.0}

PRESETS = {"quick": QUICK, "default": DEFAULT, "full-size": FULL_SIZE}


def sizes(preset: str) -> dict:
    """Scenario sizes of a preset (quick, default, full-size), with the common knobs
    under the key ``"common"``. A scenario's ``deadline_s`` bounds its measured phase:
    deliveries still missing then are reported as pending, not lost."""
    table = copy.deepcopy(PRESETS[preset])
    table["common"] = dict(COMMON_QUICK if preset == "quick" else COMMON)
    return table


def users_needed(table: dict) -> int:
    """PocketBase users the relay needs: one per subscriber of the largest scenario
    (rooms: 2 per room), so no two subscribers share a user (each user's events go
    to all of that user's connections)."""
    return max(table["fanout"]["subscribers"], table["latency"]["subscribers"],
               2 * table["rooms"]["rooms"], 2)


def apply_override(table: dict, assignment: str) -> None:
    """Apply ``--set scenario.key=value`` (or ``common.key=value``) to the size table
    ``table`` (``sizes()``): the value is a float when it has a dot, else an int;
    SystemExit naming the known settings when the setting is unknown."""
    path, _, value = assignment.partition("=")
    scope, _, key = path.partition(".")
    if scope not in table or key not in table[scope]:
        raise SystemExit(f"--set: unknown setting {path!r}; known: "
                         + ", ".join(f"{s}.{k}" for s, v in table.items() for k in v))
    table[scope][key] = float(value) if "." in value else int(value)
