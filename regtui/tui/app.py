"""RegtuiApp: the archive inspector with an embedded registry, and `run_tui` for the command line.

The app owns the work, each kind in a part of its own that `RegtuiApp` is assembled from: opening, measuring and
verifying archives run in thread workers (`archive_work`); the registry server runs on an event loop of its own
in a worker thread (`server_control`; `server_thread=False` puts it on the app's loop instead), and its events
arrive through the shared `EventBus`, coalesced and drawn a few times a second (`live_events`). The state they
share is `appstate.AppState`. Views (in `widgets/`) only render what they are handed.

`source=` (regtui.watch.sources) opens it without archives on events from elsewhere (`regtui watch`, `watching`):
the source publishes on the same bus, the archive views are hidden, and the status line tells where the events
come from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, TabbedContent, TabPane

from regtui.tui.archive_work import ArchiveWork
from regtui.tui.messages import SelectionChanged
from regtui.tui.screens.help import HelpScreen
from regtui.tui.server_control import ServerControl
from regtui.tui.watching import Watching
from regtui.tui.widgets.common import Splitter, VimTable
from regtui.tui.widgets.config import ConfigView
from regtui.tui.widgets.files import FilesView
from regtui.tui.widgets.header import StatusLine
from regtui.tui.widgets.images import ImagesTree
from regtui.tui.widgets.layers import LayersView
from regtui.tui.widgets.manifests import ManifestsView
from regtui.tui.widgets.package import PackageView
from regtui.tui.widgets.pulls import PullsView
from regtui.tui.widgets.requests import RequestsView
from regtui.tui.widgets.server import ServerView
from regtui.tui.widgets.verify import VerifyView

if TYPE_CHECKING:
    from regtui.oci.expect import Expectation

TABS = ["layers", "config", "manifests", "verify", "server", "requests", "pulls", "package", "files"]


class RegtuiApp(Watching, ServerControl, ArchiveWork):
    """Constructor arguments and shared attributes: `appstate.AppState`."""

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
        self._start_live()
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

    def on_layers_view_show_files(self, message: LayersView.ShowFiles) -> None:
        self.action_show_tab("files")
        self.query_one(FilesView).show_layer(message.index)

    # -- navigation, help, palette, quit ---------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        """Switch views from any focus. Focus moves into the new pane first: left in the old pane, it would
        switch TabbedContent straight back (it follows focus)."""
        pane = self.query_one(f"#{tab}", TabPane)
        target = next(iter(pane.query(VimTable)), None) or next(
            (w for w in pane.query("*") if w.focusable and not isinstance(w, Input)), None
        )
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
        yield SystemCommand(
            "Stop server" if running else "Start server",
            "Serve the open archives read-only over HTTP (s)",
            self.action_toggle_server,
        )
        yield SystemCommand("Verify archive", "Re-hash every blob of the selected archive (v)", self.action_verify)
        yield SystemCommand("Copy server URL", "Put the registry URL on the clipboard (u)", self.action_copy_url)
        yield SystemCommand(
            "Push to a registry", "Copy the selected archive's images into a registry (P)", self.action_push
        )
        yield SystemCommand("Help", "Every view and key (?)", self.action_help)
        for i, tab in enumerate(TABS):
            yield SystemCommand(
                f"Show {tab.title()}", f"Switch to the {tab} view ({i + 1})", lambda tab=tab: self.action_show_tab(tab)
            )

    async def action_quit(self) -> None:
        for ev in (self._verify_cancel, self._measure_cancel):
            if ev is not None:
                ev.set()
        await self.stop_server()
        self._stop_live()
        self.exit()

    def on_unmount(self) -> None:
        self._stop_live()
        if self.source is not None:
            self.source.stop()
        self._signal_stop()  # the server thread finishes its requests (short grace) and ends
        if self._unsubscribe is not None:
            self._unsubscribe()
        for ev in (self._verify_cancel, self._measure_cancel):
            if ev is not None:
                ev.set()


def run_tui(
    paths: list[str], host: str = "127.0.0.1", port: int = 5000, expectations: list[Expectation] | None = None
) -> None:
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        for p in missing:
            print(
                f"regtui: error: {p}: no such file or directory (give a .tar archive or an OCI layout folder)",
                file=sys.stderr,
            )
        sys.exit(2)
    app = RegtuiApp(paths, host, port, expectations=expectations)
    app.run()
    if app.failures and not app.archives:
        for line in app.failures:
            print(f"regtui: error: {line}", file=sys.stderr)
        sys.exit(2)
