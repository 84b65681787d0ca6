"""The state every part of the TUI app shares, set up from `RegtuiApp`'s constructor, and the status lines drawn
from it.

`RegtuiApp` (app.py) is assembled from parts that each hold one kind of work (`archive_work`, `server_control`,
`live_events`, `watching`); they all build on `AppState`, so each part sees the same typed attributes.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from textual.app import App
from textual.timer import Timer
from textual.worker import Worker

from regtui.oci.model import Archive, Problem
from regtui.registry.events import Event, EventBus
from regtui.tui.facts import Selection, known_digests
from regtui.tui.live import LiveState
from regtui.tui.measure import LayerFacts
from regtui.tui.widgets.files import FilesIndexed
from regtui.tui.widgets.header import StatusLine, served_line
from regtui.tui.widgets.manifests import ManifestsView
from regtui.tui.widgets.requests import RequestContext
from regtui.tui.widgets.server import ServerView
from regtui.watch.feed import SourceState

if TYPE_CHECKING:
    from regtui.oci.apply import ExpectResult
    from regtui.oci.expect import Expectation
    from regtui.oci.verify import VerifyReport
    from regtui.watch.sources import EventSource

ArchiveKey = tuple[str, str]  # (archive path, digest)


class AppState(App[None]):
    def __init__(
        self,
        archives: Iterable[Archive | str | os.PathLike[str]] = (),
        host: str = "127.0.0.1",
        port: int = 5000,
        *,
        clock: Callable[[], float] = time.time,
        bus: EventBus | None = None,
        capacity: int = 500,
        measure: bool = True,
        expectations: list[Expectation] | None = None,
        server_thread: bool = True,
        source: EventSource | None = None,
        refuse_corrupt: bool = True,
    ):
        super().__init__()
        items = list(archives)
        self.archives: list[Archive] = [a for a in items if isinstance(a, Archive)]
        self.pending_paths = [os.fspath(a) for a in items if not isinstance(a, Archive)]
        self.failures: list[str] = []
        self.host, self.port = host, port
        self.clock = clock
        self.bus = bus or EventBus()
        self.live = LiveState(capacity, clock=clock)
        self.measure_layers = measure
        self.expectations = list(expectations or [])  # from --expect
        self.expect_results: list[ExpectResult] = []
        self.selection: Selection | None = None
        self.layer_facts: dict[ArchiveKey, LayerFacts | None] = {}  # None while being measured
        # (archive path, manifest digest) -> per-layer changes and waste
        self.layer_contents: dict[ArchiveKey, FilesIndexed] = {}
        self.blob_problems: dict[ArchiveKey, list[Problem]] = {}  # from verification
        self.verify_reports: dict[str, VerifyReport] = {}  # archive path -> its last report
        self.verify_errors: dict[str, str] = {}  # archive path -> why the last verification did not finish
        # Blob digest -> why its bytes do not verify (from Verify and the Layers measurement). The server
        # reads it while serving: with refuse_corrupt, those blobs get BLOB_UNKNOWN instead of bad bytes.
        self.corrupt: dict[str, str] = {}
        self.refuse_corrupt = refuse_corrupt
        self._known: dict[str, str] | None = None
        self.loading: str | None = None
        # Filled by the server's (or the watched source's) thread, drained here (deque ops are atomic).
        self._pending: deque[Event | SourceState] = deque()
        self._flush_posted = False
        self._unsubscribe: Callable[[], None] | None = None
        self._live_timer: Timer | None = None
        self._server_worker: Worker[None] | None = None
        self._server_stop: asyncio.Event | None = None
        self._server_loop: asyncio.AbstractEventLoop | None = None
        self.server_thread = server_thread  # False: serve on the app's own loop (simpler, less responsive)
        self._verify_cancel: threading.Event | None = None
        self._measure_cancel: threading.Event | None = None
        self.source = source  # watching, no archive of our own
        self.source_state: SourceState | None = None
        self._source_changed = False

    def _hostport(self) -> str:
        url = self.live.server.url if self.live.server.state == "serving" else None
        if url:
            return url.split("://", 1)[-1].rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def _request_context(self) -> RequestContext:
        if self._known is None:
            self._known = known_digests(self.archives)
        return RequestContext(self._known, self.expect_results, self.corrupt)

    def _refresh_server(self) -> None:
        self.query_one(ServerView).show_state(self.live.server, self.live.requests_total)
        hp = self._hostport()
        self.query_one(ManifestsView).set_hostport(hp)
        self.query_one(ServerView).show_names(self.archives, hp, self.expect_results)
        self._status()

    def _status(self) -> None:
        if self.source is not None:
            self.query_one(StatusLine).show_watch(
                self.source.label, self.source_state, self.live.server, self.live.requests_total, self.live.bytes_total
            )
            return
        warning = None
        if self.corrupt and self.live.server.state == "serving":
            n = len(self.corrupt)
            warning = f"{n} blob{'s' * (n != 1)} failed verification: " + (
                "refused to clients (BLOB_UNKNOWN)" if self.refuse_corrupt else "served anyway; pulls of them will fail"
            )
        self.query_one(StatusLine).show(
            self.archives,
            self.live.server,
            self.live.requests_total,
            self.live.bytes_total,
            self._hostport(),
            self.loading,
            served_line(self.selection, self.expect_results),
            warning,
        )
