"""Prometheus metrics of the relay (prometheus-client), served at /metrics."""
from prometheus_client import Counter, Gauge

MESSAGES_PUBLISHED = Counter("relay_messages_published_total", "Messages accepted and stored")
MESSAGES_DELIVERED = Counter("relay_messages_delivered_total", "Message frames sent to connections")
GAP_FILLS = Counter("relay_gap_fills_total", "Times a connection filled a gap from the history")
CONNECTIONS = Gauge("relay_connections", "Open WebSocket connections in this process")
AUTH_FAILURES = Counter("relay_auth_failures_total", "Refused credentials", ["reason"])
EVENTS_HANDLED = Counter("relay_worker_events_total", "Events handed to the channel layer by this worker")
