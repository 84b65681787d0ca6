"""The Layers view: one row per layer, a detail pane for the selected one, sort by size, `/` filter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static
from textual.widgets.data_table import ColumnKey

from regtui.oci.digests import short
from regtui.oci.model import Image, Layer, Problem
from regtui.tui.facts import Selection, human_size, layer_history, media_label
from regtui.tui.measure import LayerFacts
from regtui.tui.widgets.common import FilteredView, VimTable, row_index

if TYPE_CHECKING:
    from regtui.tui.widgets.files import FilesIndexed

MARKS = {True: Text("✓", style="green"), False: Text("✗", style="bold red"), None: Text("·", style="dim")}


class LayersView(FilteredView):
    filter_id = "layers-filter"

    @dataclass
    class ShowFiles(Message):
        """Enter on a layer: show the Files view as of that layer."""

        index: int

    def __init__(
        self,
        facts: dict[tuple[str, str], LayerFacts | None],
        problems: dict[tuple[str, str], list[Problem]],
        contents: dict[tuple[str, str], FilesIndexed] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.facts = facts  # (archive path, digest) -> LayerFacts, shared with the app's measuring worker
        self.problems = problems  # (archive path, digest) -> [Problem] from the last verification
        self.contents = contents if contents is not None else {}  # (archive, manifest digest) -> FilesIndexed
        self.selection: Selection | None = None
        self.sort_by_size = False
        self.query_text = ""

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="filter layers: digest, media type or created_by text (esc clears)",
            id="layers-filter",
            classes="filter",
        )
        yield VimTable(id="layers-table")
        with VerticalScroll(id="layer-detail", classes="detail"):
            yield Static(id="layer-detail-text")

    def on_mount(self) -> None:
        t = self.query_one(VimTable)
        for label, key in (
            ("#", "n"),
            ("digest", "digest"),
            ("media type", "type"),
            ("size", "size"),
            ("uncompressed", "usize"),
            ("diff_id", "diff"),
            ("ok", "ok"),
            ("created_by", "by"),
            ("files +~-", "changes"),
            ("hidden", "hidden"),
        ):
            t.add_column(label, key=key)

    # -- data --------------------------------------------------------------------------------------------
    def show(self, selection: Selection) -> None:
        self.selection = selection
        self.refresh_rows()

    def _shown(self) -> tuple[str, Image] | None:
        """The selected image and the path of its archive (the key to its facts), if an image is selected."""
        sel = self.selection
        return (sel.archive.path, sel.image) if sel is not None and sel.image is not None else None

    def _mark(self, archive_path: str, layer: Layer) -> Text:
        key = (archive_path, layer.digest)
        if self.problems.get(key):
            return MARKS[False]
        f: LayerFacts | None = self.facts.get(key)
        if f is None:
            return Text("…", style="dim") if key in self.facts else MARKS[None]
        return MARKS[f.ok]

    def _usize(self, archive_path: str, layer: Layer) -> str:
        f = self.facts.get((archive_path, layer.digest))
        if f is not None and f.uncompressed_size is not None:
            return human_size(f.uncompressed_size)
        if layer.compression is None and layer.location is not None:
            return human_size(layer.descriptor.size)
        return "—"

    def refresh_rows(self) -> None:
        t = self.query_one(VimTable)
        cursor = t.cursor_row
        t.clear()
        t.columns[ColumnKey("size")].label = Text("size ▼" if self.sort_by_size else "size")
        shown = self._shown()
        if shown is None:
            self.query_one("#layer-detail-text", Static).update("Select an image in the tree.")
            return
        archive_path, image = shown
        history = layer_history(image)
        indexed = self.contents.get((archive_path, image.manifest.digest))
        rows = list(enumerate(image.layers))
        if self.sort_by_size:
            rows.sort(key=lambda r: -r[1].descriptor.size)
        q = self.query_text.lower()
        for i, layer in rows:
            by = history[i]
            hay = f"{layer.digest} {layer.descriptor.media_type} {layer.diff_id or ''} {by}".lower()
            if q and q not in hay:
                continue
            t.add_row(
                str(i + 1),
                short(layer.digest),
                media_label(layer.descriptor.media_type),
                Text(human_size(layer.descriptor.size), justify="right"),
                Text(self._usize(archive_path, layer), justify="right"),
                short(layer.diff_id) if layer.diff_id else "—",
                self._mark(archive_path, layer),
                Text(by.replace("\n", " ")[:200], no_wrap=True, overflow="ellipsis"),
                *self._contents_cells(indexed, i),
                key=str(i),
            )
        if t.row_count:
            t.move_cursor(row=min(max(cursor, 0), t.row_count - 1))
        self._fit_created_by()
        self._show_detail()

    @staticmethod
    def _contents_cells(indexed: FilesIndexed | None, i: int) -> tuple[Text, Text]:
        """Added/modified/removed entries and the bytes the final image hides (from the Files view's index)."""
        if indexed is None or i >= len(indexed.counts):
            return Text("—", style="dim"), Text("—", style="dim")
        c = indexed.counts[i]
        changes = Text.assemble(
            (f"+{c['added']}", "green"), " ", (f"~{c['modified']}", "yellow"), " ", (f"-{c['removed']}", "red")
        )
        hidden = indexed.waste.layer_hidden_bytes[i]
        return changes, Text(human_size(hidden), style="red" if hidden else "dim", justify="right")

    def on_data_table_row_selected(self, event: VimTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.ShowFiles(row_index(event.row_key)))

    def _fit_created_by(self) -> None:
        """created_by takes the width the other columns leave (the detail pane shows it whole): the table
        never scrolls sideways, whatever the tree's width, from the first render on."""
        t = self.query_one(VimTable)
        if not t.size.width:
            return
        col = t.columns[ColumnKey("by")]
        others = sum(c.get_render_width(t) for k, c in t.columns.items() if k != ColumnKey("by"))
        room = max(10, t.size.width - others - 2 * t.cell_padding - 1)
        if col.auto_width or col.width != room:
            col.auto_width, col.width = False, room
            t._require_update_dimensions = True  # DataTable recomputes its virtual width only when told
            t.refresh()

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_created_by)

    def on_data_table_row_highlighted(self, event: VimTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#layer-detail-text", Static)
        shown = self._shown()
        t = self.query_one(VimTable)
        if shown is None or not t.row_count:
            detail.update("No layer matches." if shown else "Select an image in the tree.")
            return
        archive_path, image = shown
        i = row_index(t.cursor_row_key())
        layer = image.layers[i]
        key = (archive_path, layer.digest)
        f = self.facts.get(key)
        txt = Text()
        txt.append(f"layer {i + 1} of {len(image.layers)}\n", style="bold")
        for name, value in (
            ("digest", layer.digest),
            ("media type", layer.descriptor.media_type),
            ("size", f"{layer.descriptor.size:,} bytes"),
            (
                "uncompressed",
                f"{f.uncompressed_size:,} bytes"
                if f and f.uncompressed_size is not None
                else ("being measured…" if key in self.facts else self._usize(archive_path, layer)),
            ),
            ("diff_id", layer.diff_id or "—"),
            (
                "stored at",
                f"{layer.location.member or layer.location.path} (offset {layer.location.offset})"
                if layer.location
                else "not in this archive",
            ),
        ):
            txt.append(f"{name:>13}  ", style="dim")
            txt.append(f"{value}\n")
        txt.append(f"{'check':>13}  ", style="dim")
        problems = self.problems.get(key) or []
        if problems:
            for p in problems:
                txt.append(f"{p.check}: expected {p.expected}, found {p.found} — {p.cause}\n", style="bold red")
        elif f is None:
            txt.append("not checked yet (v verifies the archive)\n", style="dim")
        elif f.ok:
            txt.append("digest, size and diff_id match\n", style="green")
        else:
            why = f.error or (
                "the bytes do not hash to the digest"
                if not f.digest_ok
                else "the uncompressed bytes do not hash to the diff_id"
            )
            txt.append(f"mismatch: {why}\n", style="bold red")
        indexed = self.contents.get((archive_path, image.manifest.digest))
        if indexed is not None and i < len(indexed.counts):
            changes, hidden = self._contents_cells(indexed, i)
            txt.append(f"{'files':>13}  ", style="dim")
            txt.append_text(changes)
            txt.append(
                f"  (+added ~modified -removed; enter shows them)  ·  {hidden.plain} of it hidden in the final image\n"
            )
        history = layer_history(image)[i]
        txt.append(f"{'created_by':>13}  ", style="dim")
        txt.append(history or "— (no history entry)")
        detail.update(txt)

    # -- actions -------------------------------------------------------------------------------------------
    def refilter(self) -> None:
        self.refresh_rows()

    def action_sort_size(self) -> None:
        self.sort_by_size = not self.sort_by_size
        self.notify("layers sorted by compressed size" if self.sort_by_size else "layers in manifest order")
        self.refresh_rows()
