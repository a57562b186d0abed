"""The fixed numbers of the public contract (PROTOCOL.md and docs/protocol.md), in one
place. The limits an operator sets (RELAY_MAX_MESSAGE_CHARS, the publish rate, the
caps) are settings; these are not.
"""

MAX_FRAME_BYTES = 65_536  # a frame or request body over 64 KiB: too_large (WebSocket close 4413, HTTP 413)
MAX_INT64 = 2**63 - 1  # the largest paging value (ts in Unix ns, limit)
DEFAULT_LIMIT = 100  # messages per page when `limit` is not given
MAX_LIMIT = 1000  # `limit` is clamped to this
MAX_CLIENT_ID_CHARS = 64  # a publish's client_id: 1 to 64 characters
IDEMPOTENCY_SECONDS = 600  # a repeated (user, channel, client_id) within 10 minutes returns the first message
PUBLISHES_IN_FLIGHT = 64  # publishes of one connection waiting for JetStream's acks at once

# Close codes the relay sends itself (application range, mirroring HTTP).
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4408  # more than RELAY_MAX_OUTGOING_BYTES waited for a client that did not read
CLOSE_TOO_LARGE = 4413
CLOSE_TOO_MANY = 4429
CLOSE_UNAVAILABLE = 4503
