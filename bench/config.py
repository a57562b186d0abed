"""Names and sizes of the systems and scenarios (full-size, default, ``--quick``) and
the ``--set`` overrides of the sizes."""
from __future__ import annotations

import copy

SYSTEMS = ["relay", "channels_tutorial", "pocketbase_realtime", "nats_raw"]
BASELINE = "channels_tutorial"
SCENARIOS = ["fanout", "rooms", "latency", "replay", "idle"]

# Text of every benchmark message: "<publisher>:<seq>:<send time ns>:" padded with
# dots to this many characters, so every system carries the same payload.
MESSAGE_CHARS = 100

# Every scenario's sizes, each as (full-size, default, quick):
# - full-size (``--full-size``): the sizes of the benchmark's definition. On a 2-core
#   machine three rounds of these for four systems take about 25 minutes (every system
#   but raw NATS drains a backlog for tens of seconds in `latency`; docs/performance.md),
#   so the default run does not use them;
# - default: the same shapes, fewer messages, a lower rate: fits in 15 minutes on this
#   project's 2-core machine (3 rounds, 4 systems);
# - quick (``--quick``): tiny sizes, a smoke test.
SIZES = {
    # 1 channel, N subscribers, 1 publisher, M messages offered as fast as accepted.
    "fanout": {"subscribers": (100, 100, 10), "messages": (1000, 100, 50), "deadline_s": (240.0, 60.0, 30.0)},
    # N channels of 2 users; each user publishes M (and receives the room's 2M).
    "rooms": {"rooms": (100, 100, 5), "messages_per_user": (20, 10, 5), "deadline_s": (120.0, 60.0, 30.0)},
    # 1 channel, N subscribers, `rate` messages per second for `duration_s` (paced, open loop).
    "latency": {"subscribers": (50, 50, 5), "rate": (200, 20, 50), "duration_s": (10, 10, 1),
                "deadline_s": (240.0, 60.0, 30.0)},
    # A subscriber resuming N missed messages, in pages of `page`.
    "replay": {"messages": (10000, 10000, 300), "page": (1000, 1000, 100), "deadline_s": (120.0, 60.0, 30.0)},
    # N open (subscribed) connections.
    "idle": {"connections": (2000, 2000, 50), "settle_s": (3.0, 2.0, 0.5), "hold_s": (5.0, 3.0, 0.5)},
}
PRESET_NAMES = ("full-size", "default", "quick")  # the order of the values in SIZES

# Load-generator knobs shared by all scenarios.
COMMON = {
    "window": 32,           # outstanding publishes per publisher (relay acks, PocketBase requests)
    "connect_concurrency": 50,
    "quiet_s": 5.0,         # a run ends when no delivery came for this long (the rest: lost)
    "message_chars": MESSAGE_CHARS,
    "settle_max_s": 60.0,   # between runs, wait up to this long for the servers to go idle
}
COMMON_QUICK = {**COMMON, "quiet_s": 2.0, "settle_max_s": 10.0}

# preset name -> {scenario: {key: value}}
PRESETS = {preset: {scenario: {key: values[i] for key, values in keys.items()} for scenario, keys in SIZES.items()}
           for i, preset in enumerate(PRESET_NAMES)}


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
