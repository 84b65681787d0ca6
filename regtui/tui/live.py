"""Live state built from the registry's event stream: a bounded ring of requests, pulls, server state.

Kept apart from widgets so the views redraw from it at their own pace and memory stays bounded however many
requests arrive.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from regtui.registry.eventjson import safe
from regtui.registry.events import (
    PullProgress,
    RequestFinished,
    RequestProgress,
    RequestStarted,
    ServerLog,
    ServerState,
)


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


class LiveState:
    def __init__(self, capacity: int = 500, log_capacity: int = 200, clock=time.time):
        self.clock = clock
        self.capacity = capacity
        self.log_capacity = log_capacity
        self.pull_capacity = 200
        self.rows: OrderedDict[int, RequestRow] = OrderedDict()
        self.pulls: dict[str, PullProgress] = {}
        self.server = ServerState("stopped")
        self.requests_total = 0
        self.bytes_total = 0
        self._changes = Changes()

    def apply(self, event) -> None:
        ch = self._changes
        if isinstance(event, RequestStarted):
            self.requests_total += 1
            # A path arrives percent-decoded: `%1b` would put a terminal escape on the screen. Escaped, as in the log.
            self.rows[event.id] = RequestRow(event.id, event.time, safe(event.client), safe(event.method),
                                             safe(event.path), safe(event.user_agent))
            ch.rows.add(event.id)
            while len(self.rows) > self.capacity:
                old, _ = self.rows.popitem(last=False)
                ch.rows.discard(old)
                ch.evicted.add(old)
        elif isinstance(event, RequestProgress):
            row = self.rows.get(event.id)
            if row is not None:
                self.bytes_total += max(0, event.bytes_sent - row.bytes_sent)
                row.bytes_sent, row.total = event.bytes_sent, event.total
                ch.rows.add(event.id)
        elif isinstance(event, RequestFinished):
            row = self.rows.get(event.id)
            if row is not None:
                self.bytes_total += max(0, event.bytes_sent - row.bytes_sent)
                row.bytes_sent = event.bytes_sent
                row.status, row.duration, row.error_code = event.status, event.duration, event.error_code
                ch.rows.add(event.id)
            else:
                self.bytes_total += event.bytes_sent
        elif isinstance(event, PullProgress):
            self.pulls[event.key] = event
            ch.pulls = True
            if len(self.pulls) > self.pull_capacity:  # forget the oldest finished pulls first
                done = [k for k, p in self.pulls.items() if p.finished] or list(self.pulls)
                for k in done[: len(self.pulls) - self.pull_capacity]:
                    del self.pulls[k]
        elif isinstance(event, ServerState):
            if event != self.server:  # state changes go to the server log too, so its story reads whole
                detail = event.error or event.url or ""
                ch.logs.append(ServerLog("error" if event.state == "failed" else "info",
                                         f"server {event.state}{': ' + detail if detail else ''}", self.clock()))
            self.server = event
            ch.server = True
        elif isinstance(event, ServerLog):
            ch.logs.append(event)
            del ch.logs[: -self.log_capacity]

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
