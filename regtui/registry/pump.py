"""Blob bodies written to the socket from a thread, a window per hop, bypassing Hypercorn's transport writes.

Streamed through Hypercorn (bench/serve.py, py-spy), every 512 KiB chunk cost a thread hop for the pread, an
event-loop round, and copies into the transport's buffer when the socket was full: the loop thread spent ~45%
of its time in transport writes and the single stream stalled near 2.3 GiB/s. Here a thread preads into one
reused buffer, checks the archive, and writes to the non-blocking socket itself, up to WINDOW bytes per hop.
Hypercorn 0.18 has no zero-copy send (no ASGI pathsend); sendfile would also read the file while sending, so
bytes changed on disk could go out before a check saw the change — this keeps the check before every send.
"""

from __future__ import annotations

import asyncio
import functools
import os
import select
import socket
import time
from dataclasses import dataclass

import h11

from regtui.oci.model import Fingerprint
from regtui.registry.blobs import CHUNK, StaleArchive, read_checked

WINDOW = 8 << 20  # bytes per thread hop at most
IN_THREAD_WAIT_MS = 20  # a thread waits this long for a full socket before handing back to the event loop
HOP_SECONDS = 0.05  # and holds on to a slow client no longer than this, so the executor's threads keep turning


class _Ended(Exception):
    """The archive file ends before the blob does (truncated on disk)."""


class _Sent:
    """Stands for bytes already written to the socket, so h11 counts them against Content-Length (h11's
    documented hook for sendfile-style writes)."""

    __slots__ = ("n",)

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


@dataclass
class Connection:
    h11: h11.Connection
    transport: asyncio.Transport
    writer: asyncio.StreamWriter
    sock: socket.socket
    lock: asyncio.Lock

    def headers_sent(self) -> bool:
        """After `http.response.start`: h11 wrote the headers and expects the body (Hypercorn >= 0.17 does
        this at once; one that buffered them would have the pump's bytes go out before them)."""
        return self.h11.our_state is h11.SEND_BODY and not self.transport.is_closing()


def h11_connection(send) -> Connection | None:
    """The plain-TCP HTTP/1.1 connection behind Hypercorn's ASGI `send`, or None (TLS, HTTP/2, other servers).

    Hypercorn 0.18 has no zero-copy send (no ASGI pathsend); this reaches its objects: HTTPStream.app_send ->
    H11Protocol.stream_send -> TCPServer.protocol_send. Anything unexpected means None and the streaming path.
    """
    try:
        stream = send.__self__
        proto = stream.send.__self__
        server = proto.send.__self__
        conn, writer, lock = proto.connection, server.writer, server.send_lock
        transport = writer.transport
    except AttributeError:
        return None
    if not isinstance(conn, h11.Connection) or conn.our_state is not h11.SEND_RESPONSE:
        return None
    if transport.get_extra_info("sslcontext") is not None or transport.get_extra_info("ssl_object") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or not isinstance(lock, asyncio.Lock) or not isinstance(writer, asyncio.StreamWriter):
        return None
    return Connection(conn, transport, writer, sock, lock)


class _Pump:
    """Copies a byte span of the archive to a non-blocking socket: pread into one reused buffer, check, write.

    Runs in a thread (the page cache may have to read from disk), a window at a time. The buffer is safe to
    reuse because this writes it to the socket itself, synchronously; the transport never holds it. Like the
    streaming path, the archive is checked after each read and before those bytes go out, so bytes changed
    on disk are never sent (sendfile could not promise that: it reads the file while sending).
    """

    def __init__(self, out: int, fd: int, pos: int, left: int, expected: Fingerprint | None, path: str):
        self.out, self.fd, self.pos, self.left = out, fd, pos, left
        self.expected, self.path = expected, path
        self.buf = bytearray(min(CHUNK, left))
        self.view = memoryview(self.buf)
        self.have = self.done = 0  # bytes in buf; of those, bytes written
        self.poller: select.poll | None = None
        self.gone = False
        self.error: Exception | None = None

    def run(self, budget: int) -> int:
        """Write up to ~budget bytes; returns how many (0: the socket stayed full for IN_THREAD_WAIT_MS)."""
        sent = 0
        deadline = time.monotonic() + HOP_SECONDS
        while sent < budget and (self.left > 0 or self.done < self.have):
            if self.done == self.have:
                try:
                    self._read()
                except (StaleArchive, _Ended) as e:
                    self.error = e  # raised once the bytes sent before are counted
                    break
            try:
                k = os.write(self.out, self.view[self.done : self.have])
            except (BrokenPipeError, ConnectionResetError):
                self.gone = True  # the client left; what went out before still counts
                break
            except BlockingIOError:
                if self.poller is None:
                    self.poller = select.poll()
                    self.poller.register(self.out, select.POLLOUT)
                if time.monotonic() > deadline or not self.poller.poll(IN_THREAD_WAIT_MS):
                    break
                continue
            self.done += k
            sent += k
        return sent

    @property
    def finished(self) -> bool:
        return self.left <= 0 and self.done == self.have

    def _read(self) -> None:
        n = read_checked(self.fd, self.view[: min(len(self.buf), self.left)], self.pos, self.path, self.expected)
        if n == 0:
            raise _Ended()
        self.pos += n
        self.left -= n
        self.have, self.done = n, 0


async def _flushed(conn: Connection) -> bool:
    """Wait until the transport has passed everything it holds (the headers) to the socket; False if it closed.

    Limits of 0 pause the writer while any byte is buffered, so `drain()` returns once the buffer is empty.
    """
    if conn.transport.get_write_buffer_size() == 0:
        return not conn.transport.is_closing()
    low, high = conn.transport.get_write_buffer_limits()
    conn.transport.set_write_buffer_limits(high=0, low=0)
    try:
        await conn.writer.drain()
    except (ConnectionError, RuntimeError):
        return False
    finally:
        if not conn.transport.is_closing():
            conn.transport.set_write_buffer_limits(high=high, low=low)
    return not conn.transport.is_closing() and conn.transport.get_write_buffer_size() == 0


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


def _close_all(fds: tuple[int, ...], done: asyncio.Future[int]) -> None:
    """Once a cancelled pump's thread is done with them: its file descriptors are closed here."""
    for fd in fds:
        os.close(fd)


async def pump_body(conn: Connection, fds: list, plan, count, on_change, on_short_read) -> bool:
    """The body from the archive to the socket in a thread, a window per hop, bypassing the transport.

    Streamed through Hypercorn, each 512 KiB chunk took a thread hop, an event-loop round and copies into
    h11's and the transport's buffers (profiled: ~45% of the loop thread's time in transport writes).

    False if the client went away. `fds[0]` becomes None when a cancelled thread is left to close it.
    """
    fd = fds[0]
    loc = plan.blob.location
    expected = plan.blob.archive.fingerprints.get(loc.path)
    pos, left = loc.offset + plan.start, plan.length
    loop = asyncio.get_running_loop()
    out = os.dup(conn.sock.fileno())  # ours: stays valid (no reuse of the number) if Hypercorn closes first
    own_out = True  # False once a cancelled thread is left to close it
    try:
        async with conn.lock:  # Hypercorn writes nothing else on this connection meanwhile
            if not await _flushed(conn):  # the headers, if the socket was full
                return False
            pump = _Pump(out, fd, pos, left, expected, loc.path)
            while not pump.finished:
                if conn.transport.is_closing():
                    return False
                push = loop.run_in_executor(None, pump.run, WINDOW)
                try:
                    sent = await asyncio.shield(push)
                except asyncio.CancelledError:
                    push.add_done_callback(functools.partial(_close_all, (fd, out)))
                    fds[0] = None
                    own_out = False
                    raise
                if sent:
                    try:  # h11 counts them against Content-Length
                        # h11 types `data` as bytes, but its passthrough hook takes any object with a length.
                        conn.h11.send_with_data_passthrough(h11.Data(data=_Sent(sent)))  # type: ignore[arg-type]
                    except h11.LocalProtocolError:
                        return False  # Hypercorn saw the connection close meanwhile
                    count(sent)
                if pump.gone:
                    return False
                if isinstance(pump.error, StaleArchive):
                    on_change(pump.error)
                    raise OSError(str(pump.error))  # cut short of Content-Length: a failed transfer
                if pump.error is not None:
                    on_short_read(pump.left)
                    raise OSError(f"archive ended {pump.left} bytes early")
                if not sent:
                    await _writable(loop, out)
    finally:
        if own_out:
            os.close(out)
    return True
