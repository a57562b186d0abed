"""Twisted TCP writes that go to the socket at once when nothing is waiting to be sent,
on accepted connections with Nagle's algorithm off.

Twisted's `write` always buffers and asks the reactor to write once the socket is
writable. For every WebSocket frame daphne sends, that is an add_writer, one more
event-loop iteration, a doWrite through callWithLogger and a remove_writer. asyncio's
own transports send at once when their buffer is empty and buffer only what the
socket did not take; `install()` gives Twisted's TCP connections (daphne's) the same
behaviour. Measured with the benchmark in docs/performance.md.

Order is kept: the immediate send is only tried when Twisted's buffers are empty; what
the socket does not take (or any error, which Twisted then handles on its next write
attempt as before) goes through Twisted's own buffered write with its flow control.
TLS connections started with startTLS keep Twisted's path untouched.

Twisted leaves Nagle's algorithm on for the connections it accepts, so the kernel holds a
small frame written while the client has not yet acknowledged the previous one; a
client that falls behind then gets each frame one round trip after the previous one.
asyncio, uvloop, Go's net package (PocketBase) and the websockets server all set
TCP_NODELAY; `install()` makes Twisted's accepted connections (`AcceptedConnection`) do so too.

`waiting` says how many bytes written to a connection Twisted still holds: every byte
the relay sends to a WebSocket client ends there, whichever path wrote it, so that is
what bounds a client that does not read (RELAY_MAX_OUTGOING_BYTES, messaging/deliver/session.py). A lost
connection gives those bytes back at once (`AcceptedConnection.connectionLost`): its
objects may live on until the garbage collector finds their reference cycles.

Reads and writes Twisted's buffer fields (abstract.FileDescriptor `dataBuffer`, `offset`,
`_tempDataBuffer`, `_tempDataLen`) as of Twisted 26.10 (pinned); tests/unit/test_transport.py
fails if they change.
"""
from twisted.internet import tcp

_buffered_write = tcp.Connection.write


def write(connection: tcp.Connection, data: bytes) -> None:
    """`tcp.Connection.write`: send `data` (bytes) now if nothing is buffered, buffer the rest."""
    if (type(data) is bytes and data and not connection.TLS and connection.connected
            and not connection.disconnecting and not connection._writeDisconnected
            and not connection.dataBuffer and not connection._tempDataLen):
        try:
            sent = connection.socket.send(data)
        except OSError:  # EAGAIN, or an error Twisted's doWrite will meet and report
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    _buffered_write(connection, data)


def waiting(connection: tcp.Connection) -> int:
    """Bytes written to `connection` that Twisted has not handed to the socket yet (what
    the kernel took is not counted): the rest of `dataBuffer` past `offset`, plus what
    waits in `_tempDataBuffer`. A few attribute reads, no system call."""
    return len(connection.dataBuffer) - connection.offset + connection._tempDataLen


class AcceptedConnection(tcp.Server):
    """An accepted TCP connection (Twisted's `tcp.Server`) with TCP_NODELAY set, whose
    unsent bytes are dropped as soon as it is lost (aborted, reset, closed)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setTcpNoDelay(True)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.dataBuffer, self.offset, self._tempDataBuffer, self._tempDataLen = b"", 0, [], 0


def install() -> None:
    """Make every Twisted TCP connection (daphne's included) use `write`, and every TCP
    connection Twisted accepts an `AcceptedConnection`."""
    tcp.Connection.write = write
    tcp.Port.transport = AcceptedConnection
