"""The archive work of the TUI app, all in thread workers: opening archives (a large archive's tar headers take
a while to scan), measuring the selected image's layers, verifying an archive (the UI and the server keep
running), and spreading what they find into the views and the set of corrupt blobs the server refuses."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from textual import work
from textual.widgets import TabbedContent
from textual.worker import get_current_worker

from regtui.oci.errors import ArchiveError
from regtui.oci.model import Archive, Layer
from regtui.tui.appstate import AppState
from regtui.tui.facts import Selection
from regtui.tui.measure import LayerFacts, measure_layer
from regtui.tui.messages import LayerMeasured, VerifyDone, VerifyProgress
from regtui.tui.widgets.files import FilesIndexed, FilesView
from regtui.tui.widgets.header import StatusLine
from regtui.tui.widgets.images import ImagesTree
from regtui.tui.widgets.layers import LayersView
from regtui.tui.widgets.package import PackageView, unpack_progress
from regtui.tui.widgets.server import ServerView
from regtui.tui.widgets.verify import VerifyView, problems_by_blob

if TYPE_CHECKING:
    from regtui.oci.verify import VerifyReport


class ArchiveWork(AppState):
    # -- opening ---------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="open")
    def open_archives(self, paths: list[str]) -> None:
        from regtui.oci import open_archive

        opened: list[Archive] = []
        failures: list[str] = []
        for i, p in enumerate(paths):
            self.call_from_thread(self._set_loading, f"opening {i + 1}/{len(paths)}: {os.path.basename(p)}…")
            try:
                opened.append(open_archive(p, progress=unpack_progress(p, self.call_from_thread, self._set_loading)))
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

    def _opened(
        self, opened: list[Archive], failures: list[str], cached: dict[str, VerifyReport] | None = None
    ) -> None:
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

    # -- measuring the selected image's layers -----------------------------------------------------------
    def _measure(self, sel: Selection) -> None:
        if sel.image is None:
            return
        todo = [
            l
            for l in sel.image.layers
            if (sel.archive.path, l.digest) not in self.layer_facts and l.location is not None
        ]
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
    def measure_worker(self, archive_path: str, layers: list[Layer], cancel: threading.Event) -> None:
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

    def _unmark(self, archive_path: str, layers: list[Layer]) -> None:
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

    # -- verifying ---------------------------------------------------------------------------------------
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

    def _use_report(self, archive_path: str, report: VerifyReport) -> None:
        self.verify_reports[archive_path] = report
        for key in [k for k in self.blob_problems if k[0] == archive_path]:
            del self.blob_problems[key]
        self.blob_problems.update(problems_by_blob(archive_path, report))
        archive = next((a for a in self.archives if a.path == archive_path), None)
        if archive is not None:
            self.corrupt.update(report.bad_blobs(archive.blobs))
        self._facts_from_report(archive_path, report)
        self._status()

    def _facts_from_report(self, archive_path: str, report: VerifyReport) -> None:
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
                    layer.digest, usize, status is not False, diff_ok
                )
