"""`python -m relay_project.serve [-b HOST] [-p PORT] [daphne options]`: daphne serving the
relay with its own flags, so every launcher (scripts/run, Docker, tests, bench) agrees.

daphne drops WebSocket messages over its `--websocket-max-message-size` without a
word; the relay answers anything over 64 KiB with `too_large` and close 4413 itself,
so daphne's limit is raised well above that (MAX_MESSAGE_BYTES).

The application is imported before daphne starts and the objects it created are moved
out of the garbage collector's reach (gc.freeze): a full collection of the ~114,000
objects Django and the apps leave behind took 61 ms here, a pause every connection
would feel each time the collector's oldest generation ran while serving.

daphne's Twisted reactor runs on uvloop's event loop instead of asyncio's default one
(installed before daphne creates its loop on import): fanout CPU per delivery in daphne
fell from 306 to 192 µs in the benchmark (docs/performance.md). Its TCP connections send
a frame at once instead of on the next loop iteration (overrides/twisted_tcp.py). Its HTTP requests
are bounded in body size and in the time they take to arrive (overrides/daphne_http.py).
"""
import gc
import os
import sys
from importlib import import_module

import uvloop

uvloop.install()  # before daphne creates its event loop (daphne.server, on import)

from daphne.cli import CommandLineInterface  # noqa: E402
from django.conf import settings  # noqa: E402  (lazy: read once the application is imported)

from overrides import daphne_http, twisted_tcp  # noqa: E402
from relay_project.environment import exit_on_bad_settings  # noqa: E402

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
APPLICATION = "relay_project.asgi:application"


def main(argv: list[str] | None = None) -> None:
    """Run daphne with the relay's flags, then `argv` (default: this process's arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    limits = ["--websocket-max-message-size", str(MAX_MESSAGE_BYTES), "--websocket-max-frame-size", str(MAX_MESSAGE_BYTES)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay_project.settings")
    exit_on_bad_settings()
    import_module(APPLICATION.split(":")[0])  # Django, the apps and what they import, once
    twisted_tcp.install()
    daphne_http.install(settings.RELAY_HTTP_READ_TIMEOUT)
    gc.freeze()
    CommandLineInterface().run([*limits, *args, APPLICATION])


if __name__ == "__main__":
    main()
