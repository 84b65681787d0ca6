"""`serve --events`: `GET /_regtui/events`, the event stream as Server-Sent Events, for `regtui watch URL`.

Each SSE message is one JSON object of `eventjson` (the schema `--log-format json` prints, plus live request
starts, progress and pull updates), with `id: <server instance>-<sequence>`. A watcher that joins late first gets
the last `replay` objects (request starts and ends, finished pulls, server states, logs; `?replay=N` asks for
fewer); one that reconnects with `Last-Event-ID` of this server instance gets only what it missed of them.

The feed wraps the app outside the request middleware: watching is never a request in the log or the TUI, never
a pull, never in `_catalog`. With `--htpasswd` it wants the same credentials as the registry.

A watcher never slows the registry: the bus subscriber only appends to the watcher's bounded queue (and counts
what does not fit); the watcher's own task writes, awaiting its socket. When it falls behind, the objects that
did not fit are replaced by one `{"event": "dropped", "count": N}` where they were lost. Memory per watcher is
the queue (at most `queue` bytes) plus the transport's write buffer. When the server stops, streams end after
the "stopping" state, so they never hold up the graceful shutdown.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from regtui.registry.auth import REALM, BasicAuth
from regtui.registry.errors import RegistryError
from regtui.registry.eventjson import Encoder, dropped_object, dumps
from regtui.registry.events import Event, EventBus, PullProgress, RequestProgress, ServerState

PATH = "/_regtui/events"
REPLAY = 200  # objects a late joiner gets first
QUEUE = 1 << 20  # bytes of messages a watcher may be behind before it loses some (~3000 typical objects)
KEEPALIVE = 15.0  # seconds between comments on a quiet stream (proxies and clients see it is alive)


class Watcher:
    def __init__(self, capacity: int):
        self.capacity = capacity  # bytes of messages waiting, at most
        self.queue: deque[bytes] = deque()
        self.size = 0
        self.dropped = 0
        self.wake = asyncio.Event()
        self.closing = False

    def put(self, message: bytes) -> None:
        if self.size + len(message) > self.capacity:
            self.dropped += 1
            return
        if self.dropped:  # the gap goes where it was: before what comes after it
            self._append(_message(None, dumps(dropped_object(self.dropped))))
            self.dropped = 0
        self._append(message)
        self.wake.set()

    def _append(self, message: bytes) -> None:
        self.queue.append(message)
        self.size += len(message)

    def take(self) -> bytes:
        batch = b"".join(self.queue)
        self.queue.clear()
        self.size = 0
        return batch


@dataclass(slots=True)
class _Entry:
    seq: int
    obj: dict[str, Any]
    message: bytes | None = None  # the SSE message, made on first use


def _message(event_id: str | None, data: str) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}data: {data}\n\n".encode()


class WatchFeed:
    """ASGI middleware answering `GET /_regtui/events`; everything else goes to `app`."""

    def __init__(
        self,
        app,
        bus: EventBus,
        auth: BasicAuth | None = None,
        replay: int = REPLAY,
        queue: int = QUEUE,
        keepalive: float = KEEPALIVE,
    ):
        self.app = app
        self.auth = auth
        self.replay_size = replay
        self.queue_size = queue
        self.keepalive = keepalive
        self.instance = os.urandom(4).hex()
        self.encoder = Encoder(live=True)
        self.seq = 0
        self.ring: deque[_Entry] = deque(maxlen=replay)
        self.watchers: set[Watcher] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = False
        bus.subscribe(self._on_event)

    # -- the bus side: cheap, never blocks -----------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                here = asyncio.get_running_loop()
            except RuntimeError:
                here = None
            if here is not loop:  # published from another thread: handle it on the server's loop
                loop.call_soon_threadsafe(self._on_event, event)
                return
        live_only = isinstance(event, RequestProgress) or (isinstance(event, PullProgress) and not event.finished)
        if live_only and not self.watchers:
            return  # superseded by the next update; nobody to tell now
        obj = self.encoder.encode(event)
        if obj is None:
            return
        self.seq += 1
        entry = _Entry(self.seq, obj)
        if not live_only:
            self.ring.append(entry)
        if self.watchers:  # JSON text only when someone reads it: with nobody watching, --events costs a dict
            message = self._bytes(entry)
            for w in self.watchers:
                w.put(message)
        if isinstance(event, ServerState) and event.state in ("stopping", "stopped", "failed"):
            self.stopping = True
            for w in self.watchers:
                w.closing = True
                w.wake.set()

    # -- the HTTP side ---------------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        self.loop = asyncio.get_running_loop()
        if scope["type"] != "http" or scope["path"] != PATH:
            return await self.app(scope, receive, send)
        if scope["method"] != "GET":
            return await _error(
                send, RegistryError("UNSUPPORTED", f"{PATH} answers GET only", headers={"Allow": "GET"})
            )
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if self.auth is not None and await self.auth.check(headers.get("authorization")) is None:
            return await _error(
                send,
                RegistryError(
                    "UNAUTHORIZED",
                    "the event stream needs the registry's credentials",
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
                ),
            )
        await self._stream(scope, receive, send, headers)

    def _backlog(self, scope, headers: dict[str, str]) -> list[bytes]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        want = self.replay_size
        try:
            want = max(0, min(want, int(query.get("replay", [want])[0])))
        except ValueError:
            pass
        instance, _, seq = headers.get("last-event-id", "").partition("-")
        after = int(seq) if instance == self.instance and seq.isdigit() else 0
        items = [e for e in self.ring if e.seq > after]
        return [self._bytes(e) for e in items[max(0, len(items) - want) :]] if want else []

    def _bytes(self, entry: _Entry) -> bytes:
        if entry.message is None:
            entry.message = _message(f"{self.instance}-{entry.seq}", dumps(entry.obj))
        return entry.message

    async def _stream(self, scope, receive, send, headers: dict[str, str]) -> None:
        watcher = Watcher(self.queue_size)
        for message in self._backlog(scope, headers):
            watcher._append(message)
        self.watchers.add(watcher)
        disconnected = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),  # nginx in front: pass each message on at once
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b"retry: 1000\n\n", "more_body": True})
            while not disconnected.done():
                while watcher.queue:
                    await send({"type": "http.response.body", "body": watcher.take(), "more_body": True})
                if watcher.dropped:  # nothing came after the gap yet: say so now
                    n, watcher.dropped = watcher.dropped, 0
                    await send(
                        {
                            "type": "http.response.body",
                            "body": _message(None, dumps(dropped_object(n))),
                            "more_body": True,
                        }
                    )
                    continue
                if watcher.closing or self.stopping:
                    break
                watcher.wake.clear()
                waiter = asyncio.ensure_future(watcher.wake.wait())
                done, _ = await asyncio.wait(
                    {waiter, disconnected}, timeout=self.keepalive, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                if not done:
                    await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
            if not disconnected.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.watchers.discard(watcher)
            disconnected.cancel()


async def _until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _error(send, err: RegistryError) -> None:
    body = err.body()
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"docker-distribution-api-version", b"registry/2.0"),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(app, replay: int = REPLAY, queue: int = QUEUE, keepalive: float = KEEPALIVE) -> WatchFeed:
    """Put the feed in front of a `create_app` app (its bus and auth); returns it (tests look at its watchers)."""
    state = app.extensions["regtui"]
    feed = WatchFeed(app.asgi_app, state.bus, state.auth, replay=replay, queue=queue, keepalive=keepalive)
    app.asgi_app = feed
    return feed
