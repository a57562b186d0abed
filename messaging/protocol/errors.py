"""The relay's error codes (PROTOCOL.md, "Errors") as one exception type.

Every path (WebSocket, HTTP, commands) raises `RelayError`; the edge turns it into an
`error` frame, an HTTP error body or a CommandError.
"""

HTTP_STATUS = {
    "bad_frame": 400,
    "bad_request": 400,
    "invalid_channel": 400,
    "invalid_message": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
}


class RelayError(Exception):
    """A refusal with a PROTOCOL.md error code and a human sentence.

    `code` is one of HTTP_STATUS's keys; `retry_after` (seconds, float) is set only for
    `rate_limited` refusals of the publish rate.
    """

    def __init__(self, code: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        """The HTTP status PROTOCOL.md gives this code (400, 401, 403, 413, 429 or 503)."""
        return HTTP_STATUS[self.code]


class Unavailable(RelayError):
    """Redis, NATS or PocketBase could not be reached in time (code `unavailable`)."""

    def __init__(self, what: str):
        super().__init__("unavailable", f"{what} is unavailable right now; try again shortly.")
