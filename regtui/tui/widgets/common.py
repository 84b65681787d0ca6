"""Small shared widget pieces: vim-style keys on tables and trees."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Tree

VIM_TABLE_KEYS = [
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
