"""Bounds on what an HTTP client can make daphne read: the size of a request body and the
time its headers and body take to arrive.

Twisted's `http.Request` (daphne's `WebRequest`) accepts a body of any declared or
chunked size and spools it to a temporary file (above 100 kB) before daphne or Django
sees any of it: a `Content-Length` of 10 GB is read to disk in full before any answer.
`BoundedRequest` answers 413 with PROTOCOL.md's JSON error at once, from the
`Content-Length` before reading the body (no `100 Continue` is sent then), or while a
chunked body is read, as soon as it passes MAX_BODY_BYTES, and closes the connection.

Twisted's `HTTPChannel` times a connection out after `timeOut` seconds without a byte
from the client: a client sending one header byte now and then keeps its connection
open for ever. `ReadDeadlineChannel` keeps Twisted's timer but does not restart it on
each read, so a request's headers and body must arrive within RELAY_HTTP_READ_TIMEOUT
seconds of the connection opening or of the previous response (Twisted stops the timer
while the request is handled and starts it again after the response, so an idle
keep-alive connection closes after as long). A WebSocket is handed over to autobahn
when its handshake request has arrived, and the timer is no longer running then.

`install()` makes daphne's `HTTPFactory` build its connections so; serve.py runs it.
Relies on Twisted's HTTP internals as of Twisted 26.10 and daphne 4.2.3 (both pinned):
`_GenericHTTPChannelProtocol` (what Twisted's HTTPFactory builds around a channel), the
channel calling `resetTimeout` for every read, and the request hooks Twisted calls
"not intended for users" (`gotLength`, `handleContentChunk`, `requestReceived`); the
413 is written straight to the transport, as Twisted answers a bad request itself.
tests/unit/test_http_requests.py checks them on daphne's factory.
"""
import orjson
from daphne.http_protocol import HTTPFactory, WebRequest
from twisted.web import http

# Bodies over this are refused by the server itself: above the HTTP API's own 64 KiB
# (messaging/http/api.py answers those with its 413), with room for the admin's forms, and
# far below what a temporary file per request should hold.
MAX_BODY_BYTES = 2**20


def too_large_response(limit: int) -> bytes:
    """A whole HTTP/1.1 413 response with PROTOCOL.md's JSON error body, closing the connection."""
    body = orjson.dumps({"error": {"code": "too_large", "message": f"Request bodies are limited to {limit} bytes."}})
    return (b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


class BoundedRequest(WebRequest):
    """daphne's request with a body of at most MAX_BODY_BYTES; a larger one is answered
    413 `too_large` and its connection closed before the body is read (any more of it)."""

    body_limit = MAX_BODY_BYTES
    _received = 0
    _refused = False

    def gotLength(self, length):
        """Twisted: the headers are in; `length` is the Content-Length (None: chunked)."""
        if length is not None and length > self.body_limit:
            self.requestHeaders.removeHeader(b"Expect")  # answered now: no "100 Continue" first
            return self._refuse()
        super().gotLength(length)

    def handleContentChunk(self, data):
        """Twisted: the next piece of the body."""
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.body_limit:
            return self._refuse()
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        """Twisted: the whole request is in (never handled once refused)."""
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse(self):
        self._refused = True
        self.channel.transport.write(too_large_response(self.body_limit))
        self.channel.loseConnection()  # stops reading; closes once the answer is written


class ReadDeadlineChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 connection whose timeout is a deadline for the next request, not
    an idle timeout: data from the client does not restart it."""

    def resetTimeout(self):
        """Twisted calls this for every read; the deadline stands."""


def _channel(factory: HTTPFactory) -> http._GenericHTTPChannelProtocol:
    """What Twisted's HTTPFactory.protocol builds, around a ReadDeadlineChannel."""
    return http._GenericHTTPChannelProtocol(ReadDeadlineChannel())


_daphne_build_protocol = HTTPFactory.buildProtocol


def install(read_timeout_s: float) -> None:
    """Make daphne's HTTP connections ReadDeadlineChannels with `read_timeout_s` seconds
    (RELAY_HTTP_READ_TIMEOUT) for each request to arrive, building BoundedRequests."""

    def build_protocol(factory, addr):
        protocol = _daphne_build_protocol(factory, addr)
        protocol.requestFactory = BoundedRequest
        protocol.timeOut = read_timeout_s
        return protocol

    HTTPFactory.protocol = _channel
    HTTPFactory.buildProtocol = build_protocol
