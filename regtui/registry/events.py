"""The registry's event stream: what headless `serve` prints and what the TUI renders.

Events are small frozen dataclasses published on the server's event loop; subscribers must be cheap and
non-blocking (the TUI posts them as messages, `serve` formats a line).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

RequestKind = Literal["base", "manifest", "blob", "tags", "catalog", "referrers", "other"]
ServerStateName = Literal["starting", "serving", "stopping", "stopped", "failed"]


@dataclass(frozen=True)
class RequestStarted:
    id: int
    time: float  # time.time()
    client: str  # "ip:port"
    method: str
    path: str
    repository: str | None
    reference: str | None  # tag or digest
    kind: RequestKind
    user_agent: str
    accept: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestProgress:
    id: int
    bytes_sent: int
    total: int


@dataclass(frozen=True)
class RequestFinished:
    id: int
    time: float
    status: int
    bytes_sent: int
    duration: float  # seconds
    error_code: str | None = None  # distribution error code, e.g. "BLOB_UNKNOWN"
    detail: str | None = None


@dataclass(frozen=True)
class PullProgress:
    """A client pulling one image: grouped from its manifest request and the blob requests that follow."""

    key: str  # stable id of this pull
    client: str  # client address (host only)
    user_agent: str
    repository: str
    reference: str
    manifest_digest: str
    blobs_total: int
    blobs_done: int
    bytes_total: int
    bytes_done: int
    started: float
    updated: float
    finished: bool = False
    error: str | None = None  # why the pull failed: the manifest or a blob answered with an error

    @property
    def state(self) -> str:
        """ "pulling", "done", "failed", "manifest only" (no blob asked for) or "incomplete" (the client left)."""
        if self.error:
            return "failed"
        if not self.finished:
            return "pulling"
        if self.blobs_total and self.blobs_done >= self.blobs_total:
            return "done"
        return "manifest only" if self.blobs_done == 0 and self.bytes_done == 0 else "incomplete"


@dataclass(frozen=True)
class ServerState:
    state: ServerStateName
    url: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ServerLog:
    """A log record from Hypercorn/Quart, routed here instead of stderr."""

    level: str
    message: str
    time: float = 0.0


Event = RequestStarted | RequestProgress | RequestFinished | PullProgress | ServerState | ServerLog


@dataclass
class EventBus:
    _subscribers: list[Callable[[Event], None]] = field(default_factory=list)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception:  # a broken subscriber must never break serving
                pass
