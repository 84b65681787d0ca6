"""Request events from an ASGI middleware, and pull grouping, published on the event bus.

Handlers annotate the request (`RequestInfo` in the ASGI scope: error code, the manifest a pull starts from,
the blob being sent); the middleware times the request and counts the bytes that really went out.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from regtui.registry.events import EventBus, PullProgress, RequestFinished, RequestProgress, RequestStarted
from regtui.registry.routes import Route, parse_path

PROGRESS_EVERY = 0.1  # seconds between progress events of one request or pull
PULL_IDLE = 30.0  # a pull with no request for this long is over (the client had the other blobs cached)

SCOPE_KEY = "regtui.request"


class PullStart(NamedTuple):
    """A manifest GET that starts a pull (or a HEAD that resolves a tag for one)."""

    repository: str
    reference: str  # tag or digest, as asked
    manifest: str  # digest of the manifest served
    blobs: dict[str, int]  # blob digest -> size
    children: set[str]  # digests of child manifests (an index)


@dataclass
class RequestInfo:
    id: int
    route: Route
    error_code: str | None = None
    detail: str | None = None
    pull: PullStart | None = None
    blob: str | None = None  # digest whose bytes this response carries
    body: object | None = None  # the blob body: closed when the request ends, even if never sent
    ended_by: str | None = None  # why the server cut the body short, if it did


@dataclass
class _Pull:
    event: PullProgress
    expected: dict[str, int]  # blob digest -> size
    children: set[str]
    got: dict[str, int] = field(default_factory=dict)  # blob digest -> bytes received
    done: set[str] = field(default_factory=set)
    last_publish: float = 0.0


class PullTracker:
    """Groups a client's manifest and blob requests into pulls of one image."""

    def __init__(self, bus: EventBus):
        self.bus = bus
        self.active: dict[str, _Pull] = {}
        self._keys = itertools.count(1)
        self._sweeper: asyncio.TimerHandle | None = None
        self._tags: dict[tuple[str, str], tuple[str, float]] = {}

    def resolved(self, host: str, tag: str, digest: str) -> None:
        """A HEAD of a manifest: containerd resolves a tag (or digest) so, then GETs the manifest by digest."""
        self._tags[(host, digest)] = (tag, time.time())
        if len(self._tags) > 256:
            oldest = min(self._tags, key=lambda k: self._tags[k][1])
            del self._tags[oldest]

    def manifest(
        self,
        host: str,
        user_agent: str,
        repository: str,
        reference: str,
        digest: str,
        blobs: dict[str, int],
        children: set[str],
    ) -> None:
        now = time.time()
        tagged = self._tags.get((host, digest))
        if reference == digest and tagged and now - tagged[1] < PULL_IDLE:
            reference = tagged[0]  # report the pull by the tag the client asked for
        for pull in self._of(host):
            if digest in pull.children:  # a platform manifest of an index this client is pulling
                pull.expected.update(blobs)
                self._publish(pull, now, force=True)
                return
        for key, pull in list(self.active.items()):
            if pull.event.client == host and pull.event.manifest_digest == digest:
                self._end(key, now)  # the client starts over
        key = f"pull-{next(self._keys)}"
        event = PullProgress(key, host, user_agent, repository, reference, digest, 0, 0, 0, 0, now, now)
        pull = _Pull(event, dict(blobs), set(children))
        self.active[key] = pull
        self._publish(pull, now, force=True)
        self._arm()

    def blob_bytes(self, host: str, digest: str, delta: int, *, complete: bool = False) -> None:
        now = time.time()
        for pull in self._of(host):
            if digest in pull.expected:
                size = pull.expected[digest]
                pull.got[digest] = min(size, pull.got.get(digest, 0) + delta)
                if complete or pull.got[digest] >= size:
                    pull.got[digest] = size
                    pull.done.add(digest)
                self._publish(pull, now, force=complete)
                return

    def failed(self, host: str, user_agent: str, route: Route, error: str) -> None:
        """A manifest request answered with an error: the client's pull ends there."""
        now = time.time()
        key = f"pull-{next(self._keys)}"
        ref = route.reference or ""
        self.bus.publish(
            PullProgress(
                key,
                host,
                user_agent,
                route.name or "",
                ref,
                ref if ":" in ref else "",
                0,
                0,
                0,
                0,
                now,
                now,
                True,
                error,
            )
        )

    def blob_failed(self, host: str, digest: str, error: str) -> None:
        now = time.time()
        for pull in self._of(host):
            if digest in pull.expected:
                pull.event = replace(pull.event, error=error)
                self._publish(pull, now, force=True)
                self._end(pull.event.key, now)
                return

    def _of(self, host: str) -> list[_Pull]:
        return [p for p in reversed(self.active.values()) if p.event.client == host]

    def _publish(self, pull: _Pull, now: float, force: bool = False) -> None:
        finished = bool(pull.expected) and pull.done >= set(pull.expected)
        if not force and not finished and now - pull.last_publish < PROGRESS_EVERY:
            return
        pull.last_publish = now
        pull.event = replace(
            pull.event,
            blobs_total=len(pull.expected),
            blobs_done=len(pull.done),
            bytes_total=sum(pull.expected.values()),
            bytes_done=sum(pull.got.values()),
            updated=now,
            finished=finished,
        )
        self.bus.publish(pull.event)
        if finished:
            self.active.pop(pull.event.key, None)

    def _end(self, key: str, now: float) -> None:
        pull = self.active.pop(key, None)
        if pull is not None:  # with the counts as they are now, not as last throttled
            pull.event = replace(
                pull.event, blobs_done=len(pull.done), bytes_done=sum(pull.got.values()), updated=now, finished=True
            )
            self.bus.publish(pull.event)

    def _arm(self) -> None:
        if self._sweeper is None and self.active:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._sweeper = loop.call_later(PULL_IDLE / 4, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.time()
        for key, pull in list(self.active.items()):
            if now - pull.event.updated > PULL_IDLE:
                self._end(key, now)
        self._arm()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


def _header(scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]


@dataclass
class _Counts:
    """One request's response as it goes out: byte counts are ints, only the progress clock is a float."""

    status: int = 0
    sent: int = 0  # body bytes sent
    total: int = 0  # Content-Length
    counted: int = 0  # bytes already given to the pull tracker
    last: float = 0.0  # perf_counter() of the last progress event


class RequestEvents:
    """ASGI middleware: RequestStarted, throttled RequestProgress for blob bodies, RequestFinished.

    `fast` (optional) answers the hot read requests without the wrapped app: `await fast(scope, receive, send,
    raw_send, info, count)` returns False to leave the request to the app; `count(n)` accounts body bytes it sent
    without a body message (sendfile).
    """

    def __init__(self, app, bus: EventBus, pulls: PullTracker, fast=None):
        self.stopping = False  # set by the server once shutdown began: a body cut then is the grace period's end
        self.app = app
        self.bus = bus
        self.pulls = pulls
        self.fast = fast
        self._ids = itertools.count(1)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.time()
        t0 = time.perf_counter()
        info = RequestInfo(next(self._ids), parse_path(scope["path"]))
        scope[SCOPE_KEY] = info
        client = scope.get("client") or ("", 0)
        host = str(client[0])
        ua = ", ".join(_header(scope, b"user-agent"))
        route = info.route
        self.bus.publish(
            RequestStarted(
                info.id,
                start,
                f"{host}:{client[1]}",
                scope["method"],
                scope["path"],
                route.name,
                route.reference,
                route.event_kind,
                ua,
                tuple(_header(scope, b"accept")),
            )
        )
        state = _Counts()
        bus, pulls = self.bus, self.pulls

        def count(n: int) -> None:
            state.sent += n
            if info.blob is not None and state.sent > state.counted:
                now = time.perf_counter()
                if now - state.last >= PROGRESS_EVERY or state.sent >= state.total:
                    state.last = now
                    bus.publish(RequestProgress(info.id, state.sent, state.total))
                    pulls.blob_bytes(host, info.blob, state.sent - state.counted)
                    state.counted = state.sent

        async def send_events(message):
            kind = message["type"]
            if kind == "http.response.start":
                state.status = message["status"]
                for k, v in message.get("headers", ()):
                    if k.lower() == b"content-length":
                        state.total = int(v)
            elif kind == "http.response.body":
                await send(message)
                count(len(message.get("body", b"")))
                return
            await send(message)

        cancelled = False
        try:
            if self.fast is None or not await self.fast(scope, receive, send_events, send, info, count):
                await self.app(scope, receive, send_events)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            # A client gone before the body was sent leaves it unread; close its file now, not at GC time.
            close = getattr(info.body, "aclose", None)
            if close is not None:
                await close()
            status = state.status
            if info.blob is not None and state.sent > state.counted:
                pulls.blob_bytes(host, info.blob, state.sent - state.counted)
            if info.blob is not None and status == 200 and state.sent == state.total and scope["method"] == "GET":
                pulls.blob_bytes(host, info.blob, 0, complete=True)
            if info.pull is not None and status == 200:
                if scope["method"] == "GET":
                    pulls.manifest(host, ua, *info.pull)
                elif scope["method"] == "HEAD":
                    pulls.resolved(host, info.pull.reference, info.pull.manifest)
            if status >= 400 and route.kind in ("manifest", "blob"):
                error = f"{status} {info.error_code or ''}: {info.detail or ''}".replace(" :", ":")
                if route.kind == "manifest":
                    pulls.failed(host, ua, route, error)
                elif route.reference and scope["method"] == "GET":
                    pulls.blob_failed(host, route.reference, error)
            detail = info.detail
            who = info.ended_by or (
                "server shut down: the grace period ended" if cancelled and self.stopping else "client went away"
            )
            if status in (200, 206) and info.blob is not None and state.sent < state.total:
                detail = f"{who} after {state.sent} of {state.total} bytes"
            elif status == 0 and detail is None:  # no reply started: Quart drops a request whose client left
                detail = f"{who} before the reply"
            bus.publish(
                RequestFinished(
                    info.id, time.time(), status, state.sent, time.perf_counter() - t0, info.error_code, detail
                )
            )
