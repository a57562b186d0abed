"""asyncio helpers of the relay's own: tasks nobody awaits, kept and seen."""
import asyncio

_background: set[asyncio.Task] = set()  # tasks of in_background, kept until done


def retrieve_outcome(task: asyncio.Future) -> None:
    """Mark a finished task's outcome as seen: one nobody awaits any more (its
    connection closed) must not log "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()


def in_background(coro) -> asyncio.Task:
    """Run `coro` (e.g. a clean-up of an ended connection) in a task of its own, kept
    until done (asyncio holds only weak references to tasks)."""
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task
