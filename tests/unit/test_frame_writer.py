"""overrides.daphne_frames: the frames it writes are byte for byte the ones autobahn
writes through daphne, anything but a plain open connection is left to them, and the
backlog it reports is what daphne's TCP connection holds for the client."""
import socket
from functools import partial

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory
from autobahn.websocket.protocol import WebSocketProtocol as Autobahn
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import abstract, tcp
from twisted.internet.testing import StringTransport

from overrides import daphne_frames as frame_writer

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70000]  # around the 7-, 16- and 64-bit length forms


def open_connection() -> tuple[WebSocketProtocol, StringTransport]:
    """daphne's WebSocket protocol, open, on a transport that records what it is given."""
    factory = WebSocketServerFactory()
    factory.protocol = WebSocketProtocol
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.state = Autobahn.STATE_OPEN
    return protocol, transport


def daphne_send(protocol):
    """The `send` daphne gives the application of `protocol` (Server.create_application)."""
    return partial(Server.__new__(Server).handle_reply, protocol)  # a server that listens nowhere


@pytest.mark.parametrize("length", LENGTHS)
def test_a_text_frame_is_the_one_autobahn_sends(length):
    payload = ("é" * length).encode()[:length]
    protocol, transport = open_connection()
    protocol.sendMessage(payload, isBinary=False)
    assert frame_writer.text_frame(payload) == transport.value()


@pytest.mark.parametrize("length", LENGTHS)
def test_the_writer_writes_autobahns_frame_to_daphnes_connection(length):
    payload = b"m" * length
    protocol, transport = open_connection()
    write_text = frame_writer.writer_for(daphne_send(protocol))
    assert write_text(payload) is True
    assert transport.value() == frame_writer.text_frame(payload)


@pytest.mark.parametrize("change", [
    {"state": Autobahn.STATE_CONNECTING},
    {"state": Autobahn.STATE_CLOSING},
    {"state": Autobahn.STATE_CLOSED},
    {"send_state": Autobahn.SEND_STATE_INSIDE_MESSAGE},  # a fragmented message under way
    {"_perMessageCompress": object()},  # permessage-deflate negotiated
    {"autoFragmentSize": 64},
])
def test_anything_but_a_plain_open_connection_is_left_to_autobahn(change):
    protocol, transport = open_connection()
    write_text = frame_writer.writer_for(daphne_send(protocol))
    for name, value in change.items():
        setattr(protocol, name, value)
    assert write_text(b"four") is False
    assert transport.value() == b""


def test_a_send_that_is_not_daphnes_own_gets_no_writer():
    protocol, _ = open_connection()

    async def wrapped_send(message):
        await daphne_send(protocol)(message)

    assert frame_writer.writer_for(wrapped_send) is None
    assert frame_writer.writer_for(partial(print, protocol)) is None
    assert frame_writer.writer_for(partial(Server.__new__(Server).handle_reply, object())) is None


def test_a_server_that_masks_its_frames_gets_no_writer():
    protocol, _ = open_connection()
    protocol.maskServerFrames = True
    assert frame_writer.writer_for(daphne_send(protocol)) is None


def test_a_frame_over_the_limit_for_client_messages_is_still_written():
    """daphne's --websocket-max-message-size is for what clients send; autobahn held the
    relay's own frames to it too, and a valid 17 MB history page got `unavailable`."""
    protocol, transport = open_connection()
    protocol.maxMessagePayloadSize = 1000
    write_text = frame_writer.writer_for(daphne_send(protocol))
    assert write_text(b"h" * 70000) is True
    assert transport.value() == frame_writer.text_frame(b"h" * 70000)


class Reactor:
    """Takes the writable callback Twisted's buffered write asks for."""

    def addWriter(self, writer):
        pass


def test_the_backlog_is_what_daphnes_tcp_connection_holds_for_the_client():
    protocol, _ = open_connection()
    ours, peer = socket.socketpair()
    try:
        protocol.transport = tcp.Connection(ours, protocol, reactor=Reactor())
        protocol.transport.connected = True
        backlog = frame_writer.backlog_for(daphne_send(protocol))
        assert backlog() == 0
        abstract.FileDescriptor.write(protocol.transport, b"queued frames")  # Twisted's own buffered write
        assert backlog() == len(b"queued frames")
    finally:
        ours.close()
        peer.close()


def test_no_backlog_without_daphnes_plain_tcp_connection():
    protocol, _ = open_connection()  # a StringTransport: not TCP
    assert frame_writer.backlog_for(daphne_send(protocol)) is None
    assert frame_writer.backlog_for(partial(print, protocol)) is None
    ours, peer = socket.socketpair()
    try:
        protocol.transport = tcp.Connection(ours, protocol, reactor=Reactor())
        protocol.transport.TLS = True  # started TLS: Twisted's TLS layer buffers it
        assert frame_writer.backlog_for(daphne_send(protocol)) is None
    finally:
        ours.close()
        peer.close()
