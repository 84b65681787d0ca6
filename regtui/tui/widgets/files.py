"""The Files view (key 9): the selected image's merged file tree, or the image as of one layer with that layer's
changes coloured as dive colours them (added green, modified yellow, removed red).

Indexing and every rebuild (filter, layer, changes only) run in thread workers; the tree adds a directory's
children only when it is expanded, a batch at a time, so an image of hundreds of thousands of files stays quick.
`[` / `]` step through layers, `a` shows the whole image again, `c` only this layer's changes, `o` largest first,
`/` filters by path, `enter` opens a file's content.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static, Tree
from textual.worker import get_current_worker

from regtui.oci.contents import ImageFiles, load_image_files
from regtui.oci.contents.view import NO_PARENT, FileView, Row
from regtui.oci.contents.waste import Waste, analyze
from regtui.oci.hashing import Cancelled
from regtui.tui.facts import Selection, human_size
from regtui.tui.widgets.common import FilteredView, VimTree

BATCH = 400  # children added per expand; a "more" row adds the next batch
MARK_STYLE = {"added": "green", "modified": "yellow", "removed": "red", "unchanged": "", "no-op": "dim"}
MARK_LETTER = {"added": "A", "modified": "M", "removed": "D", "unchanged": " ", "no-op": " "}


@dataclass
class FilesIndexed(Message):
    """An image's files were indexed: efficiency for the status line, per-layer numbers for the Layers view."""

    archive_path: str
    manifest_digest: str
    waste: Waste
    counts: list[dict[str, int]]
    complete: bool


@dataclass(frozen=True)
class More:
    parent: int
    start: int


def _mode(kind: str, mode: int) -> str:
    import stat

    letter = {"dir": "d", "symlink": "l", "char": "c", "block": "b", "fifo": "p"}.get(kind, "-")
    return letter + stat.filemode(mode)[1:]


def row_label(row: Row) -> Text:
    style = MARK_STYLE.get(row.mark, "")
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"{MARK_LETTER.get(row.mark, ' ')} {_mode(row.kind, row.mode)} {human_size(row.size):>10}  ", style=style)
    t.append(row.name + ("/" if row.kind == "dir" else ""), style=f"bold {style}" if row.kind == "dir" else style)
    if row.link:
        t.append(f" → {row.link}", style="dim")
    return t


class FilesTree(VimTree):
    """Directories get their children when first expanded, so `l` expands even a node with none loaded yet."""

    def action_expand(self) -> None:
        node = self.cursor_node
        if node is None or not node.allow_expand:
            return
        if node.is_expanded:
            self.action_cursor_down()
        else:
            node.expand()


class FilesView(FilteredView):
    BINDINGS = [
        Binding("left_square_bracket", "layer(-1)", "Previous layer", key_display="["),
        Binding("right_square_bracket", "layer(1)", "Next layer", key_display="]"),
        Binding("a", "whole_image", "Whole image", show=False),
        Binding("c", "changes_only", "Only changes", show=False),
    ]

    filter_id = "files-filter"
    focus_type = FilesTree

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.selection: Selection | None = None
        self.files: ImageFiles | None = None
        self.waste: Waste | None = None
        self.view: FileView | None = None
        self.shown_layer: int | None = None
        self.changes = False
        self.by_size = False
        self.query_text = ""
        self._loaded_for: Selection | None = None
        self._cancel: threading.Event | None = None
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield Static("Select an image in the tree.", id="files-head")
        yield Input(placeholder="filter paths (esc clears)", id="files-filter", classes="filter")
        tree = FilesTree("/", id="files-tree")
        tree.show_root = False
        tree.auto_expand = False
        yield tree
        with VerticalScroll(id="files-detail", classes="detail"):
            yield Static(id="files-detail-text")

    # -- loading (thread workers) ----------------------------------------------------------------------------
    def show(self, selection: Selection) -> None:
        """The Images tree moved; index when this view is on screen (or when asked by `ensure_loaded`)."""
        self.selection = selection
        if self.is_on_screen:
            self.ensure_loaded()

    def on_show(self) -> None:
        self.ensure_loaded()

    def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def ensure_loaded(self) -> None:
        sel = self.selection
        if sel is None or sel.image is None or (self._loaded_for is not None and sel.same(self._loaded_for)):
            return
        if self._cancel is not None:
            self._cancel.set()
        self._cancel = threading.Event()
        self._loaded_for = sel
        self.files = self.view = self.waste = None
        self.shown_layer = None
        self.query_one(FilesTree).clear()
        self._head(f"indexing {len(sel.image.layers)} layers…")
        self.index_worker(sel, self._cancel)

    @work(thread=True, exclusive=True, group="files-index", exit_on_error=False)
    def index_worker(self, sel: Selection, cancel: threading.Event) -> None:
        last = [0.0]

        def progress(done: int, total: int, what: str) -> None:
            now = time.monotonic()
            if now - last[0] > 0.1:
                last[0] = now
                pct = 100 * done // total if total else 100
                self.app.call_from_thread(self._head, f"indexing {what}: {pct} % of {human_size(total)}")

        try:
            files = load_image_files(sel.image, progress=progress, cancel=cancel)  # type: ignore[arg-type]
        except Cancelled:
            return
        except Exception as e:  # a bug here must not take the UI down
            self.app.call_from_thread(self._head, f"cannot index: {type(e).__name__}: {e}")
            return
        waste = analyze(files)
        view = FileView(files, None)
        if not cancel.is_set() and not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._indexed, sel, files, waste, view)

    def _indexed(self, sel: Selection, files: ImageFiles, waste: Waste, view: FileView) -> None:
        if not sel.same(self.selection):
            return
        self.files, self.waste = files, waste
        counts = [files.counts(i) for i in range(len(files.layers))]
        self.post_message(
            FilesIndexed(
                sel.archive.path,
                sel.image.manifest.digest,  # type: ignore[union-attr]
                waste,
                counts,
                files.complete,
            )
        )
        self._show_view(view)

    def rebuild(self) -> None:
        if self.files is None:
            return
        self._generation += 1
        self._head("…")
        self.view_worker(self.files, self.shown_layer, self.changes, self.query_text, self._generation)

    @work(thread=True, exclusive=True, group="files-view", exit_on_error=False)
    def view_worker(self, files: ImageFiles, layer: int | None, changes: bool, text: str, generation: int) -> None:
        view = FileView(files, layer, changes_only=changes, text=text)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._rebuilt, view, generation)

    def _rebuilt(self, view: FileView, generation: int) -> None:
        if generation == self._generation and view.files is self.files:
            self._show_view(view)

    # -- the tree ------------------------------------------------------------------------------------------------
    def _show_view(self, view: FileView) -> None:
        self.view = view
        tree = self.query_one(FilesTree)
        tree.clear()
        self._add_rows(tree.root, NO_PARENT, 0)
        tree.root.expand()
        tree.cursor_line = 0
        if view.text and len(view) < 2000:  # a narrow filter: open every match's directories
            for node in list(tree.root.children):
                self._expand_all(node)
        self._head()
        self._detail(None)

    def _expand_all(self, node) -> None:
        if isinstance(node.data, int) and node.allow_expand:
            node.expand()
            self._load(node)
            for child in list(node.children):
                self._expand_all(child)

    def _add_rows(self, node, parent: int, start: int) -> None:
        view = self.view
        assert view is not None
        kids = view.children(parent, by_size=self.by_size)
        for k in kids[start : start + BATCH]:
            row = view.row(k)
            if row.has_children:
                node.add(row_label(row), data=k, allow_expand=True)
            else:
                node.add_leaf(row_label(row), data=k)
        if len(kids) > start + BATCH:
            node.add_leaf(
                Text(f"… {len(kids) - start - BATCH} more (enter)", style="dim italic"),
                data=More(parent, start + BATCH),
            )

    def _load(self, node) -> None:
        if isinstance(node.data, int) and not node.children and self.view is not None:
            self._add_rows(node, node.data, 0)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        event.stop()
        self._load(event.node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        self._detail(event.node.data if isinstance(event.node.data, int) else None)

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        event.stop()
        node, data = event.node, event.node.data
        if isinstance(data, More):
            parent = node.parent
            node.remove()
            self._add_rows(parent, data.parent, data.start)
        elif isinstance(data, int) and self.view is not None:
            if node.allow_expand:
                node.toggle()
            else:
                self.open_content(data)

    def open_content(self, k: int) -> None:
        from regtui.tui.screens.content import ContentScreen

        assert self.view is not None and self.selection is not None and self.selection.image is not None
        row = self.view.row(k)
        layer = None if self.shown_layer is None and row.mark != "removed" else row.layer
        self.app.push_screen(ContentScreen(self.view.files, self.selection.image.layers, row.path, layer))

    # -- text --------------------------------------------------------------------------------------------------------
    def _head(self, note: str = "") -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        files, w = self.files, self.waste
        if files is not None and w is not None:
            if self.shown_layer is None:
                t.append("whole image", style="bold")
            else:
                t.append(f"as of layer {self.shown_layer + 1} of {len(files.layers)}", style="bold")
                c = files.counts(self.shown_layer)
                t.append(f"  +{c['added']} added ", style="green")
                t.append(f"~{c['modified']} modified ", style="yellow")
                t.append(f"-{c['removed']} removed", style="red")
                if self.changes:
                    t.append("  only changes", style="italic")
            t.append(
                f"  ·  {len(self.view) if self.view else 0:,} paths  ·  efficiency "
                f"{w.efficiency * 100:.1f} %  ·  wasted {human_size(w.wasted_bytes)}"
            )
            if self.query_text:
                t.append(f"  ·  filter {self.query_text!r}", style="italic")
            if not files.complete:
                t.append("  ·  incomplete: a layer could not be read whole", style="bold red")
            t.append("   [ ] layers · a image · c changes · o size · / filter", style="dim")
        if note:
            t.append(("  " if t.plain else "") + note, style="italic")
        self.query_one("#files-head", Static).update(t)

    def _detail(self, k: int | None) -> None:
        detail = self.query_one("#files-detail-text", Static)
        files, w = self.files, self.waste
        if files is None or w is None:
            detail.update("")
            return
        t = Text()
        if k is not None:
            self._versions(t, files, k)
        if k is None or self.view is None or self.view.is_dir(k):  # directories: the image's waste below
            t.append("largest waste in the image (dive's numbers)\n", style="bold")
            for o in w.top(8):
                t.append(f"{human_size(o.bytes):>10}  {o.count} copies  /{o.path}\n")
            if not w.top(1):
                t.append("none: no file is written twice or deleted later\n", style="green")
            for idx in files.layers:
                for p in idx.problems:
                    t.append(f"layer {idx.digest[:19]}: {p}\n", style="yellow" if idx.complete else "red")
        detail.update(t)

    @staticmethod
    def _versions(t: Text, files: ImageFiles, k: int) -> None:
        t.append("/" + files.paths[k] + "\n", style="bold")
        versions = files.versions(k)
        if not versions:
            t.append("a directory no layer lists; implied by what is under it\n", style="dim")
        for v in versions:
            t.append(f"layer {v.layer + 1:>2}  ")
            t.append(f"{v.mark:<9}", style=MARK_STYLE.get(v.mark, ""))
            t.append(
                f" {v.kind:<8} {_mode(v.kind, v.mode)} {v.uid}:{v.gid} {human_size(v.size):>10}  "
                f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(max(0, min(v.mtime, 2**33))))}"
            )
            t.append((f" → {v.link}" if v.link else "") + "\n")

    # -- actions -----------------------------------------------------------------------------------------------------
    def action_layer(self, step: int) -> None:
        if self.files is None:
            return
        n = len(self.files.layers)
        if self.shown_layer is None:
            self.shown_layer = n - 1 if step < 0 else 0
        else:
            self.shown_layer = min(max(self.shown_layer + step, 0), n - 1)
        self.rebuild()

    def show_layer(self, index: int) -> None:
        self.shown_layer = index
        self.rebuild()

    def action_whole_image(self) -> None:
        self.shown_layer, self.changes = None, False
        self.rebuild()

    def action_changes_only(self) -> None:
        if self.shown_layer is None:
            self.notify("pick a layer first ([ or ]), then c shows only its changes", severity="warning")
            return
        self.changes = not self.changes
        self.rebuild()

    def action_sort_size(self) -> None:
        self.by_size = not self.by_size
        if self.view is not None:
            self._show_view(self.view)

    def refilter(self) -> None:
        self.rebuild()
