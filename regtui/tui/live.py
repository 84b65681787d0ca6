"""Live state built from the registry's event stream: a bounded ring of requests, pulls, server state.

Kept apart from widgets so the views redraw from it at their own pace and memory stays bounded however many
requests arrive.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from regtui.registry.eventjson import safe
from regtui.registry.events import (
    Event,
    PullProgress,
    RequestFinished,
    RequestProgress,
    RequestStarted,
    ServerLog,
    ServerState,
)

PULL_LOOKBACK = 5.0  # seconds: how far back a new pull looks for the manifest request it started with


@dataclass
class RequestRow:
    id: int
    time: float
    client: str
    method: str
    path: str
    user_agent: str
    status: int | None = None
    bytes_sent: int = 0
    total: int = 0
    duration: float | None = None
    error_code: str | None = None
    detail: str | None = None  # the error's detail text, or why a body was cut short
    kind: str = "other"  # "manifest", "blob", ...
    repository: str | None = None
    reference: str | None = None
    accept: tuple[str, ...] = ()
    pull: str | None = None  # key of the pull this request belongs to

    @property
    def text(self) -> str:
        return f"{self.method} {self.path} {self.client} {self.user_agent} {self.error_code or ''}".lower()


@dataclass
class Changes:
    """What changed since the views last drew."""

    rows: set[int] = field(default_factory=set)  # added or updated request ids
    evicted: set[int] = field(default_factory=set)
    pulls: bool = False
    server: bool = False
    logs: list[ServerLog] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows or self.evicted or self.pulls or self.server or self.logs)


class Series:
    """Per-second sums over the last `seconds` seconds (a ring of buckets), for the live graphs."""

    def __init__(self, seconds: int = 120):
        self.seconds = seconds
        self.buckets: dict[int, float] = {}

    def add(self, when: float, value: float = 1.0) -> None:
        sec = int(when)
        self.buckets[sec] = self.buckets.get(sec, 0.0) + value
        if len(self.buckets) > self.seconds * 2:
            for old in [k for k in self.buckets if k <= sec - self.seconds]:
                del self.buckets[old]

    def values(self, now: float, seconds: int | None = None) -> list[float]:
        """The last `seconds` whole seconds, oldest first (the current, partial second left out)."""
        end = int(now)
        n = seconds or self.seconds
        return [self.buckets.get(sec, 0.0) for sec in range(end - n, end)]


@dataclass
class Span:
    """One request of a pull, for its timeline."""

    label: str  # "manifest" or a blob digest
    start: float
    end: float | None = None
    ok: bool = True


class LiveState:
    def __init__(self, capacity: int = 500, log_capacity: int = 200, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.capacity = capacity
        self.log_capacity = log_capacity
        self.pull_capacity = 200
        self.rows: OrderedDict[int, RequestRow] = OrderedDict()
        self.pulls: dict[str, PullProgress] = {}
        self.server = ServerState("stopped")
        self.requests_total = 0
        self.bytes_total = 0
        self.bytes_rate, self.requests_rate, self.errors_rate = Series(), Series(), Series()
        self.pull_rates: dict[str, Series] = {}  # pull key -> bytes per second
        self.timelines: dict[str, list[Span]] = {}  # pull key -> its manifest and blob requests
        self._spans: dict[int, Span] = {}  # request id -> its span, while it belongs to a pull
        self._changes = Changes()

    def _pull_of(self, client: str, when: float) -> str | None:
        """The pull a blob request from this client belongs to: its newest one still running."""
        host = client.rsplit(":", 1)[0]
        for key in reversed(self.pulls):
            p = self.pulls[key]
            if p.client == host and not p.finished and when >= p.started - 1:
                return key
        return None

    def _attach(self, row: RequestRow, key: str, label: str) -> None:
        row.pull = key
        span = Span(
            label,
            row.time,
            None if row.duration is None else row.time + row.duration,
            row.status is None or row.status < 400,
        )
        self.timelines.setdefault(key, []).append(span)
        if row.duration is None:
            self._spans[row.id] = span

    def apply(self, event: Event) -> None:
        ch = self._changes
        if isinstance(event, RequestStarted):
            self.requests_total += 1
            # A path arrives percent-decoded: `%1b` would put a terminal escape on the screen. Escaped, as in the log.
            new = RequestRow(
                event.id,
                event.time,
                safe(event.client),
                safe(event.method),
                safe(event.path),
                safe(event.user_agent),
                kind=event.kind,
                repository=event.repository,
                reference=event.reference,
                accept=event.accept,
            )
            self.rows[event.id] = new
            self.requests_rate.add(event.time)
            if event.kind == "blob" and event.method == "GET":
                key = self._pull_of(event.client, event.time)
                if key is not None:
                    self._attach(new, key, event.reference or event.path.rsplit("/", 1)[-1])
            ch.rows.add(event.id)
            while len(self.rows) > self.capacity:
                old, _ = self.rows.popitem(last=False)
                ch.rows.discard(old)
                ch.evicted.add(old)
        elif isinstance(event, RequestProgress):
            row = self.rows.get(event.id)
            if row is not None:
                delta = max(0, event.bytes_sent - row.bytes_sent)
                self.bytes_total += delta
                self.bytes_rate.add(self.clock(), delta)
                row.bytes_sent, row.total = event.bytes_sent, event.total
                ch.rows.add(event.id)
        elif isinstance(event, RequestFinished):
            row = self.rows.get(event.id)
            if event.status >= 400:
                self.errors_rate.add(event.time)
            if row is not None:
                delta = max(0, event.bytes_sent - row.bytes_sent)
                self.bytes_total += delta
                self.bytes_rate.add(event.time, delta)
                row.bytes_sent = event.bytes_sent
                row.status, row.duration, row.error_code = event.status, event.duration, event.error_code
                row.detail = event.detail
                span = self._spans.pop(event.id, None)
                if span is not None:
                    span.end = row.time + event.duration
                    span.ok = 200 <= event.status < 300 and not event.detail
                ch.rows.add(event.id)
            else:
                self.bytes_total += event.bytes_sent
                self.bytes_rate.add(event.time, event.bytes_sent)
        elif isinstance(event, PullProgress):
            before = self.pulls.get(event.key)
            if before is None:
                self._new_pull(event)
            self.pull_rates.setdefault(event.key, Series()).add(
                event.updated, max(0, event.bytes_done - (before.bytes_done if before else 0))
            )
            self.pulls[event.key] = event
            ch.pulls = True
            if len(self.pulls) > self.pull_capacity:  # forget the oldest finished pulls first
                done = [k for k, p in self.pulls.items() if p.finished] or list(self.pulls)
                for k in done[: len(self.pulls) - self.pull_capacity]:
                    del self.pulls[k]
                    self.pull_rates.pop(k, None)
                    self.timelines.pop(k, None)
        elif isinstance(event, ServerState):
            if event != self.server:  # state changes go to the server log too, so its story reads whole
                detail = event.error or event.url or ""
                ch.logs.append(
                    ServerLog(
                        "error" if event.state == "failed" else "info",
                        f"server {event.state}{': ' + detail if detail else ''}",
                        self.clock(),
                    )
                )
            self.server = event
            ch.server = True
        elif isinstance(event, ServerLog):
            ch.logs.append(event)
            del ch.logs[: -self.log_capacity]

    def _new_pull(self, event: PullProgress) -> None:
        """A pull starts with the manifest request that just answered: the newest one from that client."""
        for row in reversed(self.rows.values()):
            if row.client.rsplit(":", 1)[0] == event.client and row.kind == "manifest" and row.pull is None:
                self._attach(row, event.key, "manifest")
                break
            if row.time < event.started - PULL_LOOKBACK:
                break

    def take_changes(self) -> Changes:
        ch, self._changes = self._changes, Changes()
        return ch


_STATUS = re.compile(r"^(?:status:)?([1-5])(xx|\d\d)$", re.IGNORECASE)


def row_matches(row: RequestRow, query: str) -> bool:
    """Filter: words match method/path/client/user agent; `404`, `4xx`, `status:5xx` match the status;
    `err` or `errors` keeps 4xx/5xx; `active` keeps requests still running."""
    for word in query.lower().split():
        m = _STATUS.match(word)
        if m:
            code = str(row.status or "")
            want = m.group(1) + m.group(2)
            ok = code.startswith(m.group(1)) if m.group(2).lower() == "xx" else code == want
        elif word in ("err", "errors", "error"):
            ok = row.status is not None and row.status >= 400
        elif word == "active":
            ok = row.status is None
        else:
            ok = word in row.text
        if not ok:
            return False
    return True
