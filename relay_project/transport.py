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
TCP_NODELAY; `install()` makes Twisted's accepted connections (`NoDelayServer`) do so too.
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


class NoDelayServer(tcp.Server):
    """An accepted TCP connection (twisted's `tcp.Server`) with TCP_NODELAY set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setTcpNoDelay(True)


def install() -> None:
    """Make every Twisted TCP connection (daphne's included) use `write`, and every TCP
    connection Twisted accepts a `NoDelayServer`."""
    tcp.Connection.write = write
    tcp.Port.transport = NoDelayServer
