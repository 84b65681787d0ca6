"""The `?` help screen: what each view shows and every key."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

# Markdown with a table of one row per view: rows longer than code lines, so kept beside this module.
HELP = (Path(__file__).parent / "help.md").read_text(encoding="utf-8")


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
