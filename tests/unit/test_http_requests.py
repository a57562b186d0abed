"""overrides.daphne_http on daphne's own HTTP factory, installed as serve.py does,
driven byte by byte on a recording transport and a test clock: a request has
RELAY_HTTP_READ_TIMEOUT from the connection's opening, however it dribbles in, and a
body over MAX_BODY_BYTES is answered 413 before it is read. The e2e versions are in
tests/e2e/test_resource_limits.py."""
import json

import pytest
from daphne.http_protocol import HTTPFactory
from daphne.server import Server  # first: installs daphne's reactor, as daphne does
from twisted.internet.testing import MemoryReactorClock, StringTransport

from overrides import daphne_http as http_requests

TIMEOUT_S = 2.0


@pytest.fixture
def connection(monkeypatch):
    """(daphne's HTTP protocol on a new connection, its transport, the clock)."""
    monkeypatch.setattr(HTTPFactory, "protocol", HTTPFactory.protocol)
    monkeypatch.setattr(HTTPFactory, "buildProtocol", HTTPFactory.buildProtocol)
    http_requests.install(TIMEOUT_S)
    server = Server.__new__(Server)  # listens nowhere; daphne's requests register with it
    server.connections = {}
    factory = HTTPFactory(server)
    factory.reactor = clock = MemoryReactorClock()
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport, clock


def test_daphnes_factory_builds_bounded_requests_on_deadline_channels(connection):
    protocol, _, _ = connection
    assert protocol.requestFactory is http_requests.BoundedRequest
    assert isinstance(protocol._channel, http_requests.ReadDeadlineChannel)
    assert protocol.timeOut == TIMEOUT_S


def test_headers_that_dribble_in_are_cut_off_at_the_deadline(connection):
    protocol, transport, clock = connection
    protocol.dataReceived(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    for _ in range(3):
        clock.advance(TIMEOUT_S / 4)
        protocol.dataReceived(b"X")  # Twisted's idle timeout would start again here
    assert not transport.disconnecting
    clock.advance(TIMEOUT_S / 4)
    assert transport.disconnecting


def huge_body_answer(transport) -> tuple[bytes, dict]:
    head, _, body = transport.value().partition(b"\r\n\r\n")
    return head, json.loads(body)


def test_a_content_length_over_the_limit_is_answered_413_at_once(connection):
    protocol, transport, _ = connection
    protocol.dataReceived(b"POST /api/channels/c/messages HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                          b"Content-Length: %d\r\n\r\n{" % (http_requests.MAX_BODY_BYTES + 1))
    head, body = huge_body_answer(transport)
    assert head.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in head  # and no "100 Continue" first
    assert body["error"]["code"] == "too_large"
    assert transport.disconnecting


def test_a_chunked_body_is_answered_413_once_over_the_limit(connection):
    protocol, transport, _ = connection
    protocol.dataReceived(b"POST /api/channels/c/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    for _ in range(http_requests.MAX_BODY_BYTES // 0x10000):
        protocol.dataReceived(chunk)
    assert transport.value() == b"" and not transport.disconnecting  # at the limit: still reading
    protocol.dataReceived(b"1\r\n \r\n")
    head, body = huge_body_answer(transport)
    assert head.startswith(b"HTTP/1.1 413 ") and body["error"]["code"] == "too_large"
    assert transport.disconnecting
    protocol.dataReceived(chunk + b"0\r\n\r\n")  # what was already on its way is dropped
    assert transport.value().count(b"HTTP/1.1") == 1
