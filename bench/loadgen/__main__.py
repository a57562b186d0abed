"""``python -m bench.loadgen``: read the job from stdin, run its scenario against its
system, write the result (see the package docstring)."""
from __future__ import annotations

import json
import sys
import time
import traceback

import uvloop

from .channels_tutorial import TutorialAdapter
from .nats_raw import NatsAdapter
from .pocketbase_realtime import PocketBaseAdapter
from .relay import RelayAdapter
from .scenarios import scenario_fanout, scenario_idle, scenario_latency, scenario_replay, scenario_rooms

ADAPTERS = {"relay": RelayAdapter, "channels_tutorial": TutorialAdapter,
            "pocketbase_realtime": PocketBaseAdapter, "nats_raw": NatsAdapter}
SCENARIO_FUNCS = {"fanout": scenario_fanout, "rooms": scenario_rooms, "latency": scenario_latency,
                  "replay": scenario_replay, "idle": scenario_idle}


async def run_job(job: dict) -> dict:
    """Run the job's scenario against its system; returns the result record (JSON-able)."""
    adapter = ADAPTERS[job["system"]](job["config"], job["common"])
    try:
        return await SCENARIO_FUNCS[job["scenario"]](adapter, job, job["sizes"], job["common"])
    finally:
        await adapter.close()


def main() -> int:
    """Read the job from stdin, run it, write the result to the job's `out` path; exit code."""
    job = json.loads(sys.stdin.readline())
    started = time.time()
    try:
        result = uvloop.run(run_job(job))
        result["ok"] = True
    except BaseException as exc:  # noqa: BLE001 - reported, never hidden
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["wall_s"] = time.time() - started
    with open(job["out"], "w") as fh:
        json.dump(result, fh)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
