"""RegtuiApp: the archive inspector with an embedded registry, and `run_tui` for the command line.

The app owns the work: opening, measuring and verifying archives run in thread workers; the registry server
runs on an event loop of its own in a worker thread (`serving`; `server_thread=False` puts it on the app's
loop instead), and its events arrive through the shared `EventBus`, coalesced and drawn a few times a second.
Views (in `widgets/`) only render what they are handed.

`source=` (regtui.watch.sources) opens it without archives on events from elsewhere (`regtui watch`): the source
publishes on the same bus, the archive views are hidden, and the status line tells where the events come from.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Input, TabbedContent, TabPane
from textual.worker import Worker, get_current_worker

from regtui.oci.errors import ArchiveError
from regtui.oci.model import Archive
from regtui.registry.events import EventBus, ServerLog, ServerState
from regtui.tui.facts import Selection, known_digests
from regtui.tui.live import LiveState
from regtui.tui.measure import LayerFacts, measure_layer
from regtui.tui.messages import (
    LayerMeasured,
    RegistryEvents,
    SelectionChanged,
    VerifyDone,
    VerifyProgress,
)
from regtui.tui.screens.help import HelpScreen
from regtui.tui.serving import serve_archives, serve_on_own_loop, signal_stop
from regtui.tui.widgets.common import Splitter, VimTable
from regtui.tui.widgets.config import ConfigView
from regtui.tui.widgets.files import FilesIndexed, FilesView
from regtui.tui.widgets.header import StatusLine, served_line
from regtui.tui.widgets.images import ImagesTree
from regtui.tui.widgets.layers import LayersView
from regtui.tui.widgets.manifests import ManifestsView
from regtui.tui.widgets.package import PackageView, unpack_progress
from regtui.tui.widgets.pulls import PullsView
from regtui.tui.widgets.requests import RequestContext, RequestsView
from regtui.tui.widgets.server import ServerView
from regtui.tui.widgets.verify import VerifyView, problems_by_blob
from regtui.watch.feed import SourceState

if TYPE_CHECKING:
    from regtui.watch.sources import EventSource

TABS = ["layers", "config", "manifests", "verify", "server", "requests", "pulls", "package", "files"]
ARCHIVE_TABS = ("layers", "config", "manifests", "verify", "package", "files")  # hidden while watching
STOP_GRACE = 2.0  # seconds running pulls get to finish when the server stops
REDRAW_EVERY = 0.2  # live views redraw at most this often, however fast events arrive


class RegtuiApp(App):
    TITLE = "regtui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("s", "toggle_server", "Serve"),
        Binding("v", "verify", "Verify"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("u", "copy_url", "Copy URL", show=False),
        Binding("P", "push", "Push", show=False),
        Binding("slash", "view('action_filter')", "Filter", key_display="/"),
        Binding("o", "view('action_sort_size')", "Sort by size", show=False),
        Binding("f", "view('action_toggle_follow')", "Follow", show=False),
        Binding("y", "view('action_copy_digest')", "Copy digest", show=False),
        Binding("less_than_sign", "resize_tree(-4)", "Narrower tree", show=False),
        Binding("greater_than_sign", "resize_tree(4)", "Wider tree", show=False),
        *[Binding(str(i + 1), f"show_tab('{tab}')", tab.title(), show=False) for i, tab in enumerate(TABS)],
    ]

    def __init__(
        self,
        archives: Iterable[Archive | str | os.PathLike] = (),
        host: str = "127.0.0.1",
        port: int = 5000,
        *,
        clock: Callable[[], float] = time.time,
        bus: EventBus | None = None,
        capacity: int = 500,
        measure: bool = True,
        expectations: list | None = None,
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
        self.expectations = list(expectations or [])  # regtui.oci.forensics.Expectation, from --expect
        self.expect_results: list = []
        self.selection: Selection | None = None
        self.layer_facts: dict = {}  # (archive path, digest) -> LayerFacts, None while being measured
        self.layer_contents: dict = {}  # (archive path, manifest digest) -> FilesIndexed (per-layer changes, waste)
        self.blob_problems: dict = {}  # (archive path, digest) -> [Problem] from verification
        self.verify_reports: dict = {}  # archive path -> VerifyReport
        self.verify_errors: dict = {}  # archive path -> why the last verification did not finish
        # Blob digest -> why its bytes do not verify (from Verify and the Layers measurement). The server
        # reads it while serving: with refuse_corrupt, those blobs get BLOB_UNKNOWN instead of bad bytes.
        self.corrupt: dict[str, str] = {}
        self.refuse_corrupt = refuse_corrupt
        self._known: dict[str, str] | None = None
        self.loading: str | None = None
        self._pending: deque = deque()  # filled by the server's thread, drained here (deque ops are atomic)
        self._flush_posted = False
        self._unsubscribe = None
        self._server_worker: Worker | None = None
        self._server_stop: asyncio.Event | None = None
        self._server_loop: asyncio.AbstractEventLoop | None = None
        self.server_thread = server_thread  # False: serve on the app's own loop (simpler, less responsive)
        self._verify_cancel: threading.Event | None = None
        self._measure_cancel: threading.Event | None = None
        self.source = source  # regtui.watch.sources.EventSource: watching, no archive of our own
        self.source_state: SourceState | None = None
        self._source_changed = False

    # -- layout ------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Horizontal(id="body"):
            yield ImagesTree(id="images")
            yield Splitter(id="splitter")
            with TabbedContent(id="tabs", initial="layers"):
                with TabPane("1 Layers", id="layers"):
                    yield LayersView(self.layer_facts, self.blob_problems, self.layer_contents, id="layers-view")
                with TabPane("2 Config", id="config"):
                    yield ConfigView(id="config-view")
                with TabPane("3 Manifests", id="manifests"):
                    yield ManifestsView(id="manifests-view")
                with TabPane("4 Verify", id="verify"):
                    yield VerifyView(id="verify-view")
                with TabPane("5 Server", id="server"):
                    yield ServerView(self.host, self.port, id="server-view")
                with TabPane("6 Requests", id="requests"):
                    yield RequestsView(self.live, self.clock, self._request_context, id="requests-view")
                with TabPane("7 Pulls", id="pulls"):
                    yield PullsView(self.clock, self.live, id="pulls-view")
                with TabPane("8 Package", id="package"):  # shown only while a Zarf package is open
                    yield PackageView(id="package-view")
                with TabPane("9 Files", id="files"):
                    yield FilesView(id="files-view")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TabbedContent).hide_tab("package")
        self._unsubscribe = self.bus.subscribe(self._on_bus_event)
        self._live_timer = self.set_interval(REDRAW_EVERY, self._redraw_live)
        if self.source is not None:
            self._watch_mode()
        self.query_one(ServerView).show_state(self.live.server, 0)
        if self.pending_paths:
            self.loading = f"opening {len(self.pending_paths)} archive(s)…"
            self.open_archives(self.pending_paths)
        else:
            if self.expectations:  # archives handed in already opened: match here (tests, small archives)
                from regtui.oci.forensics import apply_to_archives

                self.expect_results = apply_to_archives(self.archives, self.expectations)
            self._archives_ready()
        self._status()
        (self.query_one("#requests-table") if self.source is not None else self.query_one(ImagesTree)).focus()

    def _watch_mode(self) -> None:
        """No archive: only what a remote server's events fill (Server log, Requests, Pulls)."""
        self.query_one(ImagesTree).display = False
        tabs = self.query_one(TabbedContent)
        for tab in ARCHIVE_TABS:
            tabs.hide_tab(tab)
        tabs.active = "requests"
        self.query_one(ServerView).watching(self.source.label)
        self.query_one(RequestsView).empty_hint = f"no requests yet from {self.source.label}"
        self.query_one(PullsView).empty_hint = f"No pulls yet from {self.source.label}."
        self.source.start(self.bus.publish)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # Nothing of our own to serve, verify, push or look into while watching.
        watching = self.source is not None
        archive_only = action in ("toggle_server", "verify", "push") or (
            action == "show_tab" and bool(parameters) and parameters[0] in ARCHIVE_TABS)
        return not (watching and archive_only)

    # -- opening archives (thread worker: a large archive's tar headers take a while to scan) ------------
    @work(thread=True, exclusive=True, group="open")
    def open_archives(self, paths: list[str]) -> None:
        from regtui.oci import open_archive

        opened, failures = [], []
        for i, p in enumerate(paths):
            self.call_from_thread(self._set_loading, f"opening {i + 1}/{len(paths)}: {os.path.basename(p)}…")
            try:
                opened.append(open_archive(p, progress=unpack_progress(p, self.call_from_thread,
                                                                        self._set_loading)))
            except ArchiveError as e:
                failures.append(e.line())
            except OSError as e:
                failures.append(f"{p}: {e.strerror or e}")
        if self.expectations and opened:
            self.call_from_thread(self._set_loading, "matching expected digests…")
            from regtui.oci.forensics import apply_to_archives

            self.expect_results = apply_to_archives(opened, self.expectations)
        from regtui.oci.cache import load_report

        # An earlier `regtui verify` (or v here) of these very bytes: its marks and sizes show at once.
        cached = {a.path: r for a in opened if (r := load_report(a)) is not None}
        self.call_from_thread(self._opened, opened, failures, cached)

    def _set_loading(self, text: str) -> None:
        self.loading = text
        self._status()

    def _opened(self, opened: list[Archive], failures: list[str], cached: dict | None = None) -> None:
        self.archives.extend(opened)
        for path, report in (cached or {}).items():
            self._use_report(path, report)
        self.failures = failures
        self.loading = None
        if failures and not opened and not self.archives:
            self.exit(return_code=2)  # nothing to show: run_tui prints why, like the other commands
            return
        for f in failures:
            self.notify(f, title="cannot open archive", severity="error", timeout=15)
        self._archives_ready()

    def _archives_ready(self) -> None:
        self._known = None
        if any(a.package is not None for a in self.archives):
            self.query_one(TabbedContent).show_tab("package")
        tree = self.query_one(ImagesTree)
        tree.load(self.archives, self.failures)
        tree.styles.width = tree.fitting_width(self.size.width)
        self.query_one(ServerView).show_names(self.archives, self._hostport(), self.expect_results)
        self._status()

    # -- selection ---------------------------------------------------------------------------------------
    def on_selection_changed(self, message: SelectionChanged) -> None:
        sel = message.selection
        if sel.same(self.selection):
            return
        self.selection = sel
        self.query_one(LayersView).show(sel)
        self.query_one(ConfigView).show(sel)
        self.query_one(ManifestsView).show(sel, self._hostport(), self.expect_results)
        self.query_one(VerifyView).show(sel, self.verify_reports.get(sel.archive.path))
        self.query_one(PackageView).show(sel.archive, self.verify_reports.get(sel.archive.path))
        self.query_one(FilesView).show(sel)
        self._status()
        if self.measure_layers and sel.image is not None:
            self._measure(sel)

    def _measure(self, sel: Selection) -> None:
        todo = [l for l in sel.image.layers if (sel.archive.path, l.digest) not in self.layer_facts
                and l.location is not None]
        if not todo:
            self.query_one(FilesView).ensure_loaded()  # per-layer changes for Layers, efficiency for the status
            return
        if self._measure_cancel is not None:
            self._measure_cancel.set()
        for l in todo:
            self.layer_facts[(sel.archive.path, l.digest)] = None  # shown as "being measured"
        self._measure_cancel = threading.Event()
        self.measure_worker(sel.archive.path, todo, self._measure_cancel)
        self.query_one(LayersView).refresh_rows()

    @work(thread=True, group="measure")
    def measure_worker(self, archive_path: str, layers: list, cancel: threading.Event) -> None:
        """Uncompressed sizes and recomputed digests for the selected image, one layer at a time."""
        for layer in layers:
            if cancel.is_set() or get_current_worker().is_cancelled:
                break
            facts = measure_layer(layer, cancel)
            if facts is not None:
                self.post_message(LayerMeasured(archive_path, facts))
        if not cancel.is_set():  # measuring indexed every layer: the Files view merges them from the cache
            self.call_from_thread(lambda: self.query_one(FilesView).ensure_loaded())
        # Layers left unmeasured (selection moved on) go back to "not checked".
        self.call_from_thread(self._unmark, archive_path, layers)

    def _unmark(self, archive_path: str, layers: list) -> None:
        for l in layers:
            key = (archive_path, l.digest)
            if key in self.layer_facts and self.layer_facts[key] is None:
                del self.layer_facts[key]

    def on_layer_measured(self, message: LayerMeasured) -> None:
        # Stored even if the worker's clean-up ran first: messages and call_from_thread are not ordered.
        facts = message.facts
        self.layer_facts[(message.archive_path, facts.digest)] = facts
        if not facts.ok:
            self.corrupt[facts.digest] = "its bytes do not hash to its digest (Layers measured it)"
            self._status()
        self.query_one(LayersView).refresh_rows()

    def on_files_indexed(self, message: FilesIndexed) -> None:
        self.layer_contents[(message.archive_path, message.manifest_digest)] = message
        self.query_one(StatusLine).note = f"efficiency {message.waste.efficiency * 100:.1f} %"
        self._status()
        self.query_one(LayersView).refresh_rows()

    def on_layers_view_show_files(self, message: LayersView.ShowFiles) -> None:
        self.action_show_tab("files")
        self.query_one(FilesView).show_layer(message.index)

    # -- verification (thread worker; the UI and the server keep running) -----------------------------
    def action_verify(self) -> None:
        sel = self.selection
        if sel is None:
            self.notify("nothing to verify yet", severity="warning")
            return
        self.query_one(TabbedContent).active = "verify"
        if self._verify_cancel is not None and not self._verify_cancel.is_set():
            self.notify("verification is already running")
            return
        self._verify_cancel = threading.Event()
        self.query_one(VerifyView).started(os.path.basename(sel.archive.path.rstrip("/")))
        self.verify_worker(sel.archive, self._verify_cancel)

    def cancel_verify(self) -> None:
        if self._verify_cancel is not None:
            self._verify_cancel.set()

    @work(thread=True, exclusive=True, group="verify")
    def verify_worker(self, archive: Archive, cancel: threading.Event) -> None:
        from regtui.oci.hashing import Cancelled
        from regtui.oci.verify import verify_archive

        last = [0.0]

        def progress(done: int, total: int, label: str = "") -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or done >= total:  # at most 10 redraws a second
                last[0] = now
                self.post_message(VerifyProgress(done, total, label))

        t0 = self.clock()
        try:
            report = verify_archive(archive, progress=progress, cancel=cancel)
        except Cancelled:
            self.post_message(VerifyDone(archive.path, None, "verification cancelled"))
            return
        except Exception as e:  # a bug in verification must not take the UI down
            self.post_message(VerifyDone(archive.path, None, f"verification failed: {type(e).__name__}: {e}"))
            return
        from regtui.oci.cache import save_report

        save_report(archive, report)  # the CLI's `regtui verify` and the next start reuse it
        self.post_message(VerifyDone(archive.path, report, None, self.clock() - t0))

    def on_verify_progress(self, message: VerifyProgress) -> None:
        self.query_one(VerifyView).progress(message.done, message.total, message.label)

    def on_verify_done(self, message: VerifyDone) -> None:
        if self._verify_cancel is not None:
            self._verify_cancel.set()
        name = os.path.basename(message.archive_path.rstrip("/"))
        self.query_one(VerifyView).finished(name, message.report, message.error, message.elapsed)
        if message.error:
            self.verify_errors[message.archive_path] = message.error
        if message.report is not None:
            self._use_report(message.archive_path, message.report)
            self.query_one(LayersView).refresh_rows()
            if self.selection is not None and self.selection.archive.path == message.archive_path:
                self.query_one(PackageView).show(self.selection.archive, message.report)

    def _use_report(self, archive_path: str, report) -> None:
        self.verify_reports[archive_path] = report
        for key in [k for k in self.blob_problems if k[0] == archive_path]:
            del self.blob_problems[key]
        self.blob_problems.update(problems_by_blob(archive_path, report))
        archive = next((a for a in self.archives if a.path == archive_path), None)
        if archive is not None:
            self.corrupt.update(report.bad_blobs(archive.blobs))
        self._facts_from_report(archive_path, report)
        self._status()

    def _facts_from_report(self, archive_path: str, report) -> None:
        """Verification hashed every layer: its sizes and results fill the Layers view without another read."""
        archive = next((a for a in self.archives if a.path == archive_path), None)
        if archive is None:
            return
        for image in archive.images():
            for layer in image.layers:
                status = report.status_of(layer.digest)
                usize = report.uncompressed_sizes.get(layer.digest)
                if status is None and usize is None:
                    continue
                computed = report.computed_diff_ids.get(layer.digest)
                diff_ok = None if not layer.diff_id or computed is None else computed == layer.diff_id
                self.layer_facts[(archive_path, layer.digest)] = LayerFacts(
                    layer.digest, usize, status is not False, diff_ok)

    # -- the embedded registry (async worker on this loop) ----------------------------------------------
    def _hostport(self) -> str:
        url = self.live.server.url if self.live.server.state == "serving" else None
        if url:
            return url.split("://", 1)[-1].rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def action_toggle_server(self) -> None:
        if self.live.server.state in ("serving", "starting"):
            self.run_worker(self.stop_server(), group="server-stop")
        else:
            self.start_server()

    def start_server(self) -> None:
        if self.loading:
            self.notify("still opening the archives", severity="warning")
            return
        if not self.archives:
            self.notify("no archive is open, nothing to serve", severity="error")
            return
        addr = self.query_one(ServerView).bind_address()
        if isinstance(addr, str):
            self._server_failed(addr)
            return
        self.host, self.port = addr
        self._server_stop = asyncio.Event()
        self.live.apply(ServerState("starting"))
        self._refresh_server()
        if self.server_thread:
            self._server_worker = self.serve_in_thread(self.host, self.port, self._server_stop)
        else:
            self._server_worker = self.serve_on_loop(self.host, self.port, self._server_stop)

    @work(thread=True, group="server", exclusive=True, exit_on_error=False)
    def serve_in_thread(self, host: str, port: int, stop: asyncio.Event) -> None:
        """The server on its own event loop in a thread: 64 clients streaming blobs keep that loop busy, and
        key presses must not queue behind them (measured in bench/tui_bench.py)."""

        def on_loop(loop) -> None:
            self._server_loop = loop

        error = serve_on_own_loop(self.archives, host, port, stop, self.bus, STOP_GRACE, on_loop, self._refuse())
        try:
            self.call_from_thread(self._serve_ended, error)
        except RuntimeError:  # the app already closed
            pass

    @work(group="server", exclusive=True, exit_on_error=False)
    async def serve_on_loop(self, host: str, port: int, stop: asyncio.Event) -> None:
        self._serve_ended(await serve_archives(self.archives, host, port, stop, self.bus, STOP_GRACE,
                                               self._refuse()))

    def _refuse(self) -> dict[str, str] | None:
        return self.corrupt if self.refuse_corrupt else None

    def _request_context(self) -> RequestContext:
        if self._known is None:
            self._known = known_digests(self.archives)
        return RequestContext(self._known, self.expect_results, self.corrupt)

    def _serve_ended(self, error: str | None) -> None:
        try:
            if not self.is_running or not self.query("#status"):  # the server outlived the screen (quitting)
                return
        except Exception:  # no screen any more
            return
        if error:
            self._server_failed(error)
        elif self.live.server.state not in ("stopped", "failed"):
            self.live.apply(ServerState("stopped"))
            self._refresh_server()

    def _server_failed(self, error: str) -> None:
        self.live.apply(ServerState("failed", error=error))
        self._refresh_server()
        self.notify(error, title="server", severity="error", timeout=10)

    def _signal_stop(self) -> None:
        signal_stop(self._server_stop, self._server_loop)

    async def stop_server(self, grace: float = STOP_GRACE) -> None:
        worker = self._server_worker
        if worker is None or worker.is_finished:
            return
        self.live.apply(ServerState("stopping", url=self.live.server.url))
        self._refresh_server()
        self._signal_stop()
        try:
            await asyncio.wait_for(asyncio.shield(worker.wait()), timeout=grace + 3.0)
        except (TimeoutError, Exception):
            worker.cancel()
        if self.live.server.state != "failed":
            self.live.apply(ServerState("stopped"))
        self._refresh_server()

    def action_copy_url(self) -> None:
        url = self.live.server.url or f"http://{self._hostport()}"
        self.copy_to_clipboard(url)
        self.notify(f"copied {url}")

    # -- registry events: coalesced into one message, drawn on a timer ---------------------------------
    def _on_bus_event(self, event) -> None:
        self._pending.append(event)
        if not self._flush_posted:
            self._flush_posted = True
            self.post_message(RegistryEvents())

    def on_registry_events(self, message: RegistryEvents) -> None:
        self._flush_posted = False
        while self._pending:
            self._apply(self._pending.popleft())

    def _apply(self, event) -> None:
        if isinstance(event, SourceState):  # how the watched stream goes: status line, and the Server log
            if event != self.source_state:
                level = "error" if event.state == "failed" else "warning" if event.state == "reconnecting" else "info"
                self.live.apply(ServerLog(level, f"watch {event.label}: {event.state}"
                                                 f"{': ' + event.detail if event.detail else ''}", self.clock()))
            self.source_state = event
            self._source_changed = True
            return
        self.live.apply(event)

    def _redraw_live(self) -> None:
        tabs = self.screen.query(TabbedContent)
        if not tabs or not self.is_running:  # a dialog (help, push) is on top: changes keep until it closes
            return
        try:
            self._draw_changes(tabs.first())
        except NoMatches:
            if self._running and not self._closing:  # a widget missing while the app runs is a bug: say so
                raise  # (while it shuts down, the views go before the timer does)

    def _draw_changes(self, tabs: TabbedContent) -> None:
        changes = self.live.take_changes()
        tab = tabs.active
        if changes.rows or changes.evicted:
            self.query_one(RequestsView).apply(changes)
        if tab == "requests" and (changes or self.live.server.state == "serving"):
            self.query_one(RequestsView).draw_graphs()  # the graphs scroll with time, traffic or not
        if changes.pulls:
            self.query_one(PullsView).show(self.live.pulls)
        elif tab == "pulls" and self.live.server.state == "serving":
            self.query_one(PullsView).draw_selected()
        if changes.logs:
            self.query_one(ServerView).add_logs(changes.logs)
        if changes.server:
            self._refresh_server()
        elif changes or self._source_changed:
            if changes.rows:
                self.query_one(ServerView).show_state(self.live.server, self.live.requests_total)
            self._status()
        self._source_changed = False

    def _refresh_server(self) -> None:
        self.query_one(ServerView).show_state(self.live.server, self.live.requests_total)
        hp = self._hostport()
        self.query_one(ManifestsView).set_hostport(hp)
        self.query_one(ServerView).show_names(self.archives, hp, self.expect_results)
        self._status()

    def _status(self) -> None:
        if self.source is not None:
            self.query_one(StatusLine).show_watch(self.source.label, self.source_state, self.live.server,
                                                  self.live.requests_total, self.live.bytes_total)
            return
        warning = None
        if self.corrupt and self.live.server.state == "serving":
            n = len(self.corrupt)
            warning = (f"{n} blob{'s' * (n != 1)} failed verification: "
                       + ("refused to clients (BLOB_UNKNOWN)" if self.refuse_corrupt else "served anyway; pulls of "
                          "them will fail"))
        self.query_one(StatusLine).show(self.archives, self.live.server, self.live.requests_total,
                                        self.live.bytes_total, self._hostport(), self.loading,
                                        served_line(self.selection, self.expect_results), warning)

    # -- navigation, help, palette, quit ---------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        """Switch views from any focus. Focus moves into the new pane first: left in the old pane, it would
        switch TabbedContent straight back (it follows focus)."""
        pane = self.query_one(f"#{tab}", TabPane)
        target = next(iter(pane.query(VimTable)), None) or next(
            (w for w in pane.query("*") if w.focusable and not isinstance(w, Input)), None)
        self.screen.set_focus(None)
        self.query_one(TabbedContent).active = tab
        self.call_after_refresh((target or self.query_one(ImagesTree)).focus)

    def action_resize_tree(self, delta: int) -> None:
        tree = self.query_one(ImagesTree)
        self.query_one(Splitter).resize_to(tree.outer_size.width + delta)

    def action_view(self, action: str) -> None:
        """Keys that belong to one view (filter, sort, follow, copy) work wherever the focus is."""
        pane = self.query_one(f"#{self.query_one(TabbedContent).active}", TabPane)
        for view in pane.children:
            method = getattr(view, action, None)
            if method is not None:
                method()
                return
        self.bell()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_push(self) -> None:
        if self.selection is None:
            self.notify("nothing to push yet", severity="warning")
            return
        from regtui.tui.screens.push import PushScreen

        self.push_screen(PushScreen(self.selection.archive))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        running = self.live.server.state in ("serving", "starting")
        yield SystemCommand("Stop server" if running else "Start server",
                            "Serve the open archives read-only over HTTP (s)", self.action_toggle_server)
        yield SystemCommand("Verify archive", "Re-hash every blob of the selected archive (v)", self.action_verify)
        yield SystemCommand("Copy server URL", "Put the registry URL on the clipboard (u)", self.action_copy_url)
        yield SystemCommand("Push to a registry", "Copy the selected archive's images into a registry (P)",
                            self.action_push)
        yield SystemCommand("Help", "Every view and key (?)", self.action_help)
        for i, tab in enumerate(TABS):
            yield SystemCommand(f"Show {tab.title()}", f"Switch to the {tab} view ({i + 1})",
                                lambda tab=tab: self.action_show_tab(tab))

    async def action_quit(self) -> None:
        for ev in (self._verify_cancel, self._measure_cancel):
            if ev is not None:
                ev.set()
        await self.stop_server()
        self._live_timer.stop()
        self.exit()

    def on_unmount(self) -> None:
        self._live_timer.stop()
        if self.source is not None:
            self.source.stop()
        self._signal_stop()  # the server thread finishes its requests (short grace) and ends
        if self._unsubscribe is not None:
            self._unsubscribe()
        for ev in (self._verify_cancel, self._measure_cancel):
            if ev is not None:
                ev.set()


def run_tui(paths: list[str], host: str = "127.0.0.1", port: int = 5000, expectations: list | None = None) -> None:
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        for p in missing:
            print(f"regtui: error: {p}: no such file or directory (give a .tar archive or an OCI layout folder)",
                  file=sys.stderr)
        sys.exit(2)
    app = RegtuiApp(paths, host, port, expectations=expectations)
    app.run()
    if app.failures and not app.archives:
        for line in app.failures:
            print(f"regtui: error: {line}", file=sys.stderr)
        sys.exit(2)
