"""The Config view: a readable summary of the image config, then its JSON, pretty-printed and highlighted."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from regtui.tui.facts import Selection, config_summary, pretty_json


class ConfigView(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static(id="config-summary")
        yield Static(id="config-json")

    def show(self, selection: Selection) -> None:
        image = selection.image
        summary = self.query_one("#config-summary", Static)
        raw = self.query_one("#config-json", Static)
        if image is None:
            summary.update("Select an image in the tree.")
            raw.update("")
            return
        t = Table(show_header=False, box=None, padding=(0, 1), expand=True)
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column(overflow="fold")
        for k, v in config_summary(image):
            t.add_row(k, v)
        summary.update(t)
        d = image.config.descriptor
        head = Text(f"\nconfig JSON, pretty-printed (the blob itself: {d.size} bytes, {d.digest})\n", style="bold")
        syntax = Syntax(
            pretty_json(image.config.data), "json", theme="ansi_dark", word_wrap=True, background_color="default"
        )
        from rich.console import Group

        raw.update(Group(head, syntax))
