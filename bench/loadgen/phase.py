"""The phase protocol with the orchestrator: ``PHASE <name>`` lines on stdout, each
answered by an ``OK`` line on stdin. Importing this module makes the process's stdout
the protocol channel alone: everything else printed goes to stderr."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys

# stdout is the phase protocol; everything else printed goes to stderr.
PROTO = os.fdopen(os.dup(1), "w", buffering=1)
sys.stdout = sys.stderr


async def phase(name: str) -> None:
    """Tell the orchestrator we reached ``name`` and wait for its OK (the event loop
    keeps running meanwhile, so readers keep recording)."""
    PROTO.write(f"PHASE {name}\n")
    PROTO.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line.startswith("OK"):
        raise SystemExit(f"orchestrator did not answer phase {name!r}: {line!r}")


@contextlib.asynccontextmanager
async def measured_phase():
    """The measured phase: from ``measure_start`` to ``measure_end`` (the orchestrator
    snapshots the servers at both), with the garbage collector off in between (one
    collection just before), so this process's collections do not land in it."""
    gc.collect()
    gc.disable()
    await phase("measure_start")
    yield
    await phase("measure_end")
    gc.enable()
