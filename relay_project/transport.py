"""Twisted TCP writes that go to the socket at once when nothing is waiting to be sent.

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


def install() -> None:
    """Make every Twisted TCP connection (daphne's included) use `write`."""
    tcp.Connection.write = write
