"""Run the registry app on Hypercorn in the current event loop, reporting state and logs on the event bus.

No signal handlers and no stderr output of its own: the caller (headless `serve` or the TUI) owns both.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from regtui.registry.app import BusLogHandler
from regtui.registry.connections import ConnectionCap, default_max_connections, install, raise_fd_limit
from regtui.registry.events import EventBus, ServerLog, ServerState

GRACE_SECONDS = 10.0


class BindError(Exception):
    """The address cannot be bound; the message says why and what to do."""


@dataclass(frozen=True)
class TLS:
    certfile: str
    keyfile: str


def bind_socket(host: str, port: int, reuse_port: bool = False, joining: bool = False) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port), or BindError with a clear message.

    `reuse_port`: SO_REUSEPORT, so that worker processes each bind their own socket to the port and the kernel
    spreads connections evenly (on one shared socket, whichever process wakes first accepts them all). Another
    process of the same user could share such a port silently (orphaned workers of an earlier `serve` did), so
    a plain bind comes first and fails if anyone holds the port; `joining`: a worker joining its parent's port.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise BindError(f"cannot resolve host {host!r}: {e.strerror}; use an IP address such as 127.0.0.1") from None
    family, _, _, _, addr = infos[0]
    if reuse_port and not joining:
        with _bound(host, port, family, addr, reuse_port=False) as probe:
            addr = probe.getsockname()  # port 0: the free port the kernel chose
    return _bound(host, port, family, addr, reuse_port)


def _bound(host: str, port: int, family, addr, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(addr)
        sock.listen(1024)
    except OSError as e:
        sock.close()
        where = f"{host}:{port}"
        if e.errno == errno.EADDRINUSE:
            raise BindError(
                f"port {port} on {host} is already in use; stop the other server or choose another port with --port"
            ) from None
        if e.errno == errno.EACCES:
            raise BindError(
                f"not allowed to listen on {where} (ports below 1024 need privileges); choose "
                "a port above 1024 with --port"
            ) from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise BindError(
                f"{host} is not an address of this machine; use 127.0.0.1 or one of its interfaces with --host"
            ) from None
        raise BindError(f"cannot listen on {where}: {e.strerror}") from None
    return sock


def url_for(sock: socket.socket, host: str, tls: bool) -> str:
    port = sock.getsockname()[1]
    shown = host
    try:
        if ipaddress.ip_address(host).version == 6:
            shown = f"[{host}]"
    except ValueError:
        pass
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


_server_ids = iter(range(1, 1 << 62))


def _rate_limited(bus: EventBus, every: float = 10.0):
    """The loop's exception handler: one ServerLog per kind of message per `every` seconds, not a traceback
    on stderr each time (asyncio's accept() retries once a second per socket, and on every wakeup)."""
    last: dict[str, float] = {}
    hidden: dict[str, int] = {}

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        message = str(context.get("message", "event loop error"))
        now = time.monotonic()
        if now - last.get(message, -every) < every:
            hidden[message] = hidden.get(message, 0) + 1
            return
        last[message] = now
        exc = context.get("exception")
        text = f"{message}: {type(exc).__name__}: {exc}" if exc is not None else message
        if hidden.get(message):
            text += f" (and {hidden.pop(message)} more like it in the last {every:.0f} s)"
        bus.publish(ServerLog("error", text, time.time()))

    return handler


async def serve(
    app,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    sock: socket.socket | None = None,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    tls: TLS | None = None,
    bus: EventBus | None = None,
    log_handler: logging.Handler | None = None,
    grace: float = GRACE_SECONDS,
    max_connections: int | None = None,
) -> None:
    """Serve `app` until `shutdown_trigger()` returns; then let requests in flight finish for `grace` seconds.

    Publishes ServerState starting -> serving (with the URL) -> stopping -> stopped, or failed with the
    reason (and then raises BindError or the error). Hypercorn and Quart log records become ServerLog events.
    `max_connections` (default: derived from the descriptor limit, raised to the hard limit first) caps open
    connections; see regtui.registry.connections.
    """
    state = app.extensions.get("regtui") if hasattr(app, "extensions") else None
    bus = bus or (state.bus if state is not None else EventBus())
    bus.publish(ServerState("starting"))
    own_sock = sock is None
    try:
        if sock is None:
            sock = bind_socket(host, port if port is not None else 5000)
    except BindError as e:
        bus.publish(ServerState("failed", error=str(e)))
        raise
    url = url_for(sock, host, tls is not None)

    handler = log_handler or BusLogHandler(bus)
    if isinstance(handler, BusLogHandler):
        handler.loop = asyncio.get_running_loop()
    n = next(_server_ids)
    config = Config()
    config.errorlog = _logger(f"regtui.registry.hypercorn{n}", handler)
    config.accesslog = None  # requests are reported as events, not log lines
    config.graceful_timeout = grace
    config.include_server_header = False
    config.keep_alive_timeout = 30
    if tls is not None:
        config.certfile, config.keyfile = tls.certfile, tls.keyfile
        config.alpn_protocols = ["http/1.1"]  # Hypercorn's HTTP/2 is several times slower than HTTP/1.1
    # Hypercorn wraps the descriptor in its own socket object and closes it; hand it a duplicate.
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    cap = ConnectionCap(max_connections or default_max_connections(raise_fd_limit()), bus)
    if install():
        config.regtui_cap = cap  # type: ignore[attr-defined]
    else:
        bus.publish(
            ServerLog(
                "warning",
                "this Hypercorn version offers no per-connection hook: the connection cap is not enforced",
                time.time(),
            )
        )
    app_logger = getattr(app, "logger", None)
    if isinstance(app_logger, logging.Logger) and log_handler is not None:
        app_logger.handlers = [handler]

    async def asgi(scope, receive, send):
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def send_ready(message):
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                bus.publish(ServerState("serving", url=url))

        return await app(scope, receive, send_ready)

    trigger = shutdown_trigger or asyncio.Event().wait

    async def stopping():
        await trigger()
        bus.publish(ServerState("stopping", url=url))
        events = getattr(state, "events", None)
        if events is not None:  # Hypercorn cancels what still runs after `grace`: the server cut those bodies
            asyncio.get_running_loop().call_later(grace * 0.98, setattr, events, "stopping", True)

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(_rate_limited(bus))
    try:
        await hypercorn_serve(asgi, config, shutdown_trigger=stopping, mode="asgi")
    except Exception as e:
        bus.publish(ServerState("failed", url=url, error=f"{type(e).__name__}: {e}"))
        bus.publish(ServerLog("error", f"server failed: {type(e).__name__}: {e}", time.time()))
        raise
    finally:
        loop.set_exception_handler(previous)
        cap.close()
        if state is not None:
            state.pulls.close()
        if own_sock:
            sock.close()
    bus.publish(ServerState("stopped", url=url))
