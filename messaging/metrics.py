"""Prometheus metrics (prometheus-client), one registry per process role.

Each process exposes only the metrics it changes: a counter served by a process that
never changes it reads as a permanent 0 next to the real one. WEB holds daphne's, served at /metrics
(api.metrics_view); WORKER holds a relay_worker's, served on its --metrics-port
(commands/relay_worker.py). Both also carry prometheus-client's process and Python
collectors. README "Health and metrics" lists which process exposes which metric.
"""
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from auth_pocketbase import failures


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    return registry


WEB = _registry()
WORKER = _registry()

# daphne (WEB)
CONNECTIONS = Gauge("relay_connections", "Open WebSocket connections in this process", registry=WEB)
SUBSCRIPTIONS = Gauge("relay_subscriptions", "Channels subscribed on this process's open connections", registry=WEB)
MESSAGES_PUBLISHED = Counter("relay_messages_published_total", "Messages accepted and stored", registry=WEB)
MESSAGES_DELIVERED = Counter("relay_messages_delivered_total", "Message frames sent to connections (live and replay)",
                             registry=WEB)
DELIVERY_LATENCY = Histogram(
    "relay_publish_to_deliver_seconds", "From a message's ts (assigned when stored) to its live frame being sent",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=WEB,
)
SLOW_CONSUMER_CLOSES = Counter(
    "relay_slow_consumer_closes_total", "Connections closed with 4408: more than RELAY_MAX_OUTGOING_BYTES waited for the client",
    registry=WEB,
)
GAP_FILLS = Counter("relay_gap_fills_total", "Times a connection filled a gap from the history", registry=WEB)
AUTH_FAILURES = failures.AUTH_FAILURES  # counted where credentials are taken (auth_pocketbase)
WEB.register(AUTH_FAILURES)

# relay_worker (WORKER)
EVENTS_HANDLED = Counter("relay_worker_events_total", "Events handed to the channel layer by this worker",
                         registry=WORKER)
REDELIVERIES = Counter("relay_worker_redeliveries_total",
                       "Events this worker received more than once (JetStream redelivery)", registry=WORKER)
