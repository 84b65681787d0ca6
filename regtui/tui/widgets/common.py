"""Small shared widget pieces: vim-style keys on tables and trees."""

from __future__ import annotations

from textual import events
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widget import Widget
from textual.widgets import DataTable, Input, Tree
from textual.widgets.data_table import RowKey

VIM_TABLE_KEYS: list[BindingType] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g", "scroll_top", "Top", show=False),
    Binding("G", "scroll_bottom", "Bottom", show=False),
    Binding("ctrl+d", "page_down", "Page down", show=False),
    Binding("ctrl+u", "page_up", "Page up", show=False),
]


class VimTable(DataTable):
    """A row-cursor table with j/k/g/G as well as arrows and mouse."""

    BINDINGS = VIM_TABLE_KEYS

    def __init__(self, **kwargs):
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)

    def cursor_row_key(self) -> RowKey:
        return self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key


class VimTree(Tree):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("h", "collapse", "Collapse", show=False),
        Binding("l", "expand", "Expand", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
    ]

    def action_collapse(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node.children:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent)

    def action_expand(self) -> None:
        node = self.cursor_node
        if node is not None and node.children:
            node.expand()
            self.action_cursor_down()


class FilteredView(Vertical):
    """A view with a table and a filter box: `/` focuses the box, typing filters, enter returns to the table,
    esc clears. Subclasses name the box (`filter_id`) and redraw in `refilter`."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]
    filter_id = "filter"
    query_text = ""
    focus_type: type = VimTable  # what enter and esc return the focus to

    def refilter(self) -> None:
        raise NotImplementedError

    def action_filter(self) -> None:
        box = self.query_one(f"#{self.filter_id}", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one(f"#{self.filter_id}", Input)
        box.value = ""
        box.remove_class("shown")
        self.query_one(self.focus_type).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_text = event.value.strip()
        self.refilter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(self.focus_type).focus()


def row_index(key: RowKey) -> int:
    """The position a row was added at, for the tables that key their rows with it (`key=str(i)`)."""
    if key.value is None:
        raise ValueError("this table's rows have no keys")
    return int(key.value)


class Splitter(Widget):
    """A vertical bar between two panes: drag it with the mouse to resize the pane on its left (`<` and `>`
    do the same from the keyboard)."""

    DEFAULT_CSS = """
    Splitter { width: 1; height: 1fr; background: $primary-background; }
    Splitter:hover, Splitter.-dragging { background: $accent; }
    """
    MIN = 16

    def render(self) -> str:
        return "\n".join("┃" if i == self.size.height // 2 else " " for i in range(self.size.height))

    def _pane(self) -> Widget | None:
        siblings = list(self.parent.children) if self.parent else []
        i = siblings.index(self)
        return siblings[i - 1] if i > 0 else None

    def resize_to(self, width: int) -> None:
        pane, parent = self._pane(), self.parent
        if pane is not None and isinstance(parent, Widget):
            pane.styles.width = max(self.MIN, min(width, parent.size.width - 30))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.capture_mouse()
        self.add_class("-dragging")
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self.has_class("-dragging") and isinstance(self.parent, Widget):
            self.resize_to(event.screen_x - self.parent.region.x)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self.release_mouse()
        self.remove_class("-dragging")
