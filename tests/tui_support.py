"""Helpers for the TUI tests: wait for a condition while the app runs, read widgets as plain text."""

from __future__ import annotations

import time

from rich.console import Console


async def until(pilot, condition, timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def text_of(widget) -> str:
    """What a Static (or anything with `content`) shows, as plain text."""
    console = Console(width=250, record=True, file=open("/dev/null", "w"), color_system=None)
    content = getattr(widget, "content", None)
    console.print(content if content is not None else widget.render())
    return console.export_text()


def table_rows(table) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
