"""overrides.twisted_tcp: Twisted TCP writes go out at once when nothing is buffered,
bytes never overtake each other, accepted connections have Nagle's algorithm off and
give their unsent bytes back when lost, and `waiting` counts exactly what Twisted still
holds (real sockets; a recording stand-in for the reactor, which only learns when
Twisted wants to be told the socket is writable)."""
import socket

import pytest
from twisted.internet import error, tcp
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from overrides import twisted_tcp as transport


class Reactor:
    """Records add/removeWriter: the buffered path asks for a writable callback."""

    def __init__(self):
        self.writers = set()

    def addWriter(self, writer):
        self.writers.add(writer)

    def removeWriter(self, writer):
        self.writers.discard(writer)

    def callLater(self, *args, **kwargs):
        raise AssertionError("not expected")


@pytest.fixture
def connection():
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    reactor = Reactor()
    conn = tcp.Connection(ours, Protocol(), reactor=reactor)
    conn.connected = True
    yield conn, peer, reactor
    ours.close()
    peer.close()


def read_all(peer) -> bytes:
    chunks = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        chunks.append(chunk)


def test_a_write_with_nothing_buffered_is_on_the_socket_at_once(connection):
    conn, peer, reactor = connection
    transport.write(conn, b"frame-1")
    assert read_all(peer) == b"frame-1"
    assert not reactor.writers  # no writable callback, no extra loop iteration


def test_what_the_socket_does_not_take_is_buffered_and_later_writes_queue_behind_it(connection):
    conn, peer, reactor = connection
    big = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes at once
    transport.write(conn, big)
    assert reactor.writers == {conn}  # the rest waits for the socket to be writable
    received = read_all(peer)  # the socket has room again, the rest is still buffered
    transport.write(conn, b"next")  # must not jump ahead of the buffered rest
    while conn in reactor.writers:
        conn.doWrite()
        received += read_all(peer)
    assert received == big + b"next"


def test_a_lost_connection_falls_back_to_twisted(connection):
    conn, peer, reactor = connection
    peer.close()
    transport.write(conn, b"into the void")  # EPIPE: left to Twisted's doWrite to report
    assert reactor.writers == {conn}


def test_waiting_is_what_twisted_holds_back_from_the_socket(connection):
    """What `waiting` reads is Twisted's buffer as of 26.10: a write lands in
    `_tempDataBuffer` (`_tempDataLen`), a doWrite moves it to `dataBuffer` and sends from
    `offset`. A socketpair hands what its socket takes straight to the peer, so the two
    add up to what was written, at every step; a Twisted that keeps its buffer otherwise
    fails here."""
    conn, peer, reactor = connection
    big = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes at once
    assert transport.waiting(conn) == 0
    transport.write(conn, big)
    transport.write(conn, b"next")
    written, received = len(big) + 4, read_all(peer)
    assert conn._tempDataLen > 0 and transport.waiting(conn) == written - len(received)
    conn.doWrite()  # the rest joined into dataBuffer, part of it sent
    received += read_all(peer)
    assert conn.offset > 0 and conn._tempDataLen == 0
    assert transport.waiting(conn) == written - len(received)
    while conn in reactor.writers:
        conn.doWrite()
        received += read_all(peer)
    assert transport.waiting(conn) == 0 and received == big + b"next"


class ListeningReactor(Reactor):
    """Also takes add/removeReader, which a listening port and its connections ask for."""

    def addReader(self, reader):
        pass

    def removeReader(self, reader):
        pass


class Accepted(Protocol):
    made: list = []

    def connectionMade(self):
        self.made.append(self)


@pytest.mark.parametrize("installed", [True, False])
def test_accepted_connections_have_nagle_off_once_installed(monkeypatch, installed):
    """Twisted accepts connections with Nagle's algorithm on; after install() (as serve.py
    runs it) they have TCP_NODELAY set."""
    monkeypatch.setattr(tcp.Connection, "write", tcp.Connection.write)
    monkeypatch.setattr(tcp.Port, "transport", tcp.Port.transport)
    monkeypatch.setattr(Accepted, "made", [])
    if installed:
        transport.install()
    port = tcp.Port(0, Factory.forProtocol(Accepted), interface="127.0.0.1", reactor=ListeningReactor())
    port.startListening()
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        port.doRead()  # accepts the connection
        [accepted] = Accepted.made
        assert bool(accepted.transport.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is installed
        accepted.transport.socket.close()
    finally:
        client.close()
        port.socket.close()


def test_a_lost_connection_gives_back_what_it_could_not_send(monkeypatch):
    """An aborted connection (autobahn drops a client that does not read so) keeps its
    unsent bytes in Twisted's buffer for as long as its objects live, which is until the
    garbage collector breaks their reference cycles; an AcceptedConnection drops them."""
    monkeypatch.setattr(tcp.Connection, "write", tcp.Connection.write)
    monkeypatch.setattr(tcp.Port, "transport", tcp.Port.transport)
    monkeypatch.setattr(Accepted, "made", [])
    transport.install()
    port = tcp.Port(0, Factory.forProtocol(Accepted), interface="127.0.0.1", reactor=ListeningReactor())
    port.startListening()
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        port.doRead()
        [accepted] = Accepted.made
        conn = accepted.transport
        conn.write(b"x" * (8 << 20))  # the client reads none of it
        conn.doWrite()
        assert transport.waiting(conn) > 0
        conn.connectionLost(Failure(error.ConnectionAborted()))
        assert (conn.dataBuffer, conn.offset, conn._tempDataBuffer, transport.waiting(conn)) == (b"", 0, [], 0)
    finally:
        client.close()
        port.socket.close()
