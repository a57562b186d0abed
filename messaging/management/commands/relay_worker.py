"""`python manage.py relay_worker`: hand NATS events to the users' connections."""
import asyncio
import gc
import signal
import sys

import uvloop
from django.conf import settings
from django.core.management.base import BaseCommand
from prometheus_client import start_http_server

from messaging import metrics
from messaging.fanout import worker


class Command(BaseCommand):
    help = "Consume events.> from JetStream (queue group 'relay') and hand each to the user's channel-layer group. Drains and exits 0 on SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument(
            "--metrics-port", type=int, default=settings.RELAY_WORKER_METRICS_PORT,
            help="serve this worker's Prometheus metrics on 127.0.0.1:PORT/metrics (default: "
                 "RELAY_WORKER_METRICS_PORT; 0 = off)",
        )

    def handle(self, *args, metrics_port, **options):
        if metrics_port:
            start_http_server(metrics_port, addr=settings.RELAY_WORKER_METRICS_ADDR, registry=metrics.WORKER)
        gc.freeze()  # Django's import-time objects out of the collector's scans (serve.py)
        uvloop.run(self.main())  # asyncio.run on uvloop's faster event loop

    async def main(self):
        """Run the worker until SIGTERM or SIGINT, then drain (worker.run)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def ready():
            print(worker.READY_LINE, flush=True, file=sys.stderr)

        await worker.run(settings.NATS_URL, settings.RELAY_WORKER_ACK_WAIT, stop, ready)
