"""Prometheus metrics (prometheus-client). daphne serves its process's at /metrics; a
relay_worker serves its own on --metrics-port (RELAY_WORKER_METRICS_PORT)."""
from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("relay_connections", "Open WebSocket connections in this process")
SUBSCRIPTIONS = Gauge("relay_subscriptions", "Channels subscribed on this process's open connections")
MESSAGES_PUBLISHED = Counter("relay_messages_published_total", "Messages accepted and stored")
MESSAGES_DELIVERED = Counter("relay_messages_delivered_total", "Message frames sent to connections (live and replay)")
DELIVERY_LATENCY = Histogram(
    "relay_publish_to_deliver_seconds", "From a message's ts (assigned when stored) to its live frame being sent",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GAP_FILLS = Counter("relay_gap_fills_total", "Times a connection filled a gap from the history")
AUTH_FAILURES = Counter("relay_auth_failures_total", "Refused or unverifiable credentials", ["reason"])
EVENTS_HANDLED = Counter("relay_worker_events_total", "Events handed to the channel layer by this worker")
REDELIVERIES = Counter("relay_worker_redeliveries_total", "Events this worker received more than once (JetStream redelivery)")
