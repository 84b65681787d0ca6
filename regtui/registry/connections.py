"""A cap on open connections below the descriptor limit, evicting idle connections oldest first.

At `ulimit -n 1024`, 1,100 idle sockets used to leave every new request hanging while asyncio logged an
`accept() out of system resource` traceback many thousand times a second. Now the soft limit is raised to the
hard one at start, and at most `max_connections` are open: a new one past the cap closes the oldest connection
with no request in flight (an idle keep-alive, or one that has sent nothing yet), so a real client is answered
at once. A connection that has sent nothing gets a 503 before the close, never a bare close: docker's HTTPS
probe on a plain port (REFERENCE.md) falls back to HTTP only on a reply that starts with `HTTP/`. When no
connection is idle, the new one gets that 503.

Hypercorn has no hook per connection, so its asyncio `TCPServer` (instantiated by name in
`hypercorn.asyncio.run`) is replaced by a subclass that registers with the cap its Config carries; Config
objects without one are served as before. pyproject bounds Hypercorn to the versions this was tested with.
"""

from __future__ import annotations

import asyncio
import resource
import time

import h11
import hypercorn.asyncio.run as hypercorn_run
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.events import Event, Updated

from regtui.registry.errors import RegistryError
from regtui.registry.events import EventBus, ServerLog

FDS_PER_CONNECTION = 3  # the socket, the archive file while a blob is sent, the pump's duplicate of the socket
RESERVED_FDS = 64  # the listening socket, logs, the archive index, Python itself
LOG_EVERY = 10.0  # seconds between "connection cap" log lines


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def default_max_connections(fd_limit: int) -> int:
    return max(8, (fd_limit - RESERVED_FDS) // FDS_PER_CONNECTION)


def _reply_503() -> bytes:
    body = RegistryError("UNAVAILABLE", "too many connections open; retry").body()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n"
        b"docker-distribution-api-version: registry/2.0\r\n\r\n" + body
    )


class ConnectionCap:
    def __init__(self, limit: int, bus: EventBus):
        self.limit = limit
        self.bus = bus
        self.open: dict[TCPServer, None] = {}  # insertion order: oldest first
        self.closed = 0  # evicted or refused since the last log line
        self._logged = 0.0
        self._flush: asyncio.TimerHandle | None = None

    def admit(self, conn: TCPServer) -> bool:
        """Register a new connection, making room past the cap; False: it was answered 503 and closed."""
        self.open[conn] = None
        if len(self.open) <= self.limit:
            return True
        victim = next((c for c in self.open if c is not conn and _idle(c)), None)
        self._note()
        if victim is None:
            self._close(conn, never_asked=True)
            return False
        self._close(victim, never_asked=_never_asked(victim))
        return True

    def release(self, conn: TCPServer) -> None:
        self.open.pop(conn, None)

    def _close(self, conn: TCPServer, never_asked: bool) -> None:
        self.open.pop(conn, None)
        try:
            if never_asked:
                conn.writer.write(_reply_503())
            conn.writer.close()  # flushes the reply, then FIN; the reader sees EOF and _read_data ends the rest
        except (OSError, RuntimeError):
            pass

    def _note(self) -> None:
        self.closed += 1
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY:
            self._publish()
        elif self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(LOG_EVERY - (now - self._logged), self._publish)

    def _publish(self) -> None:
        self._flush = None
        if not self.closed:
            return
        self._logged = time.monotonic()
        self.bus.publish(
            ServerLog(
                "warning",
                f"connection cap ({self.limit}, --max-connections) reached: closed "
                f"{self.closed} connection(s) with no request in flight",
                time.time(),
            )
        )
        self.closed = 0

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._publish()


def _h11(conn: TCPServer) -> tuple[h11.Connection | None, object]:
    proto = getattr(getattr(conn, "protocol", None), "protocol", None)
    c = getattr(proto, "connection", None)
    return (c if isinstance(c, h11.Connection) else None), proto


def _idle(conn: TCPServer) -> bool:
    """No request in flight: h11 waits for one (a partial request line or headers count as none)."""
    c, proto = _h11(conn)
    return (
        c is not None
        and getattr(proto, "stream", None) is None
        and c.our_state is h11.IDLE
        and c.their_state is h11.IDLE
    )


def _between_requests(conn: TCPServer) -> bool:
    """No request in flight: we are not answering one (h11 is IDLE until one arrives, MUST_CLOSE once the peer
    closed instead), and no ASGI stream is open."""
    c, proto = _h11(conn)
    answering = c is not None and c.our_state in (h11.SEND_RESPONSE, h11.SEND_BODY)
    return c is not None and not answering and getattr(proto, "stream", None) is None


def _never_asked(conn: TCPServer) -> bool:
    c, _ = _h11(conn)
    return c is not None and c.their_http_version is None


class CappedTCPServer(TCPServer):
    """Registers with the cap, and ends a connection once its peer is gone and no request is in flight.

    Hypercorn's HTTP/1.1 protocol ignores a peer's close (FIN or RST) between requests, and restarts the
    keep-alive timer when a response ends after the peer left: the socket stayed half-open and the
    connection's tasks alive until keep_alive_timeout (30 s) ran out, a descriptor per departed client.
    """

    peer_gone = False

    async def _read_data(self) -> None:
        await super()._read_data()
        self.peer_gone = True
        if _between_requests(self):
            await self._close()

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated) and event.idle and self.peer_gone:
            await self._close()  # a response ended after the peer left: nothing more can come
            return
        await super().protocol_send(event)

    async def run(self) -> None:
        cap = getattr(self.config, "regtui_cap", None)
        if cap is None:
            return await super().run()
        if not cap.admit(self):
            return
        try:
            await super().run()
        finally:
            cap.release(self)


def install() -> bool:
    """Make Hypercorn's asyncio worker build CappedTCPServer; False if this Hypercorn has no such name."""
    if getattr(hypercorn_run, "TCPServer", None) not in (TCPServer, CappedTCPServer):
        return False
    hypercorn_run.TCPServer = CappedTCPServer  # type: ignore[misc]
    return True
