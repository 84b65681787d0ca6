"""The Requests view: the live request log (a bounded ring), follow toggle, filter by text or status."""

from __future__ import annotations

import re
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Static

from regtui.tui.facts import human_size
from regtui.tui.live import Changes, LiveState, RequestRow, row_matches
from regtui.tui.widgets.common import FilteredView, VimTable

COLUMNS = (("time", "time"), ("client", "client"), ("method", "method"), ("status", "status"), ("bytes", "bytes"),
           ("duration", "duration"), ("path", "path"), ("user agent", "ua"))
_DIGEST_IN_PATH = re.compile(r"(sha256:[0-9a-f]{12})[0-9a-f]{52}")


def short_path(path: str) -> str:
    """Digests in paths cut to 12 hex digits, so status, size and duration stay on screen."""
    return _DIGEST_IN_PATH.sub(r"\1…", path)


def status_cell(row: RequestRow) -> Text:
    if row.status is None:
        return Text("…", style="yellow")
    style = "bold red" if row.status >= 500 else "bold magenta" if row.status >= 400 else "green"
    label = f"{row.status}" + (f" {row.error_code}" if row.error_code else "")
    return Text(label, style=style)


class RequestsView(FilteredView):
    filter_id = "requests-filter"

    def __init__(self, live: LiveState, clock, **kwargs):
        super().__init__(**kwargs)
        self.live = live
        self.clock = clock
        self.follow = True
        self.query_text = ""
        self.empty_hint = "no requests yet: s starts the server, then pull (Manifests has the commands)"

    def compose(self) -> ComposeResult:
        with Horizontal(id="requests-bar"):
            yield Input(placeholder="filter: words, 404, 4xx, err, active (esc clears)", id="requests-filter")
            yield Static(id="requests-info")
        yield VimTable(id="requests-table")

    def on_mount(self) -> None:
        t = self.query_one(VimTable)
        for label, key in COLUMNS:
            t.add_column(label, key=key)
        self._info()

    def _cells(self, row: RequestRow) -> list:
        dur = row.duration if row.duration is not None else max(0.0, self.clock() - row.time)
        size = human_size(row.bytes_sent)
        if row.status is None and row.total:
            size = f"{human_size(row.bytes_sent)}/{human_size(row.total)}"
        return [time.strftime("%H:%M:%S", time.localtime(row.time)), row.client, row.method, status_cell(row),
                Text(size, justify="right"),
                Text(f"{dur * 1000:.0f} ms" if dur < 10 else f"{dur:.1f} s", justify="right",
                     style="" if row.duration is not None else "dim"),
                Text(short_path(row.path), no_wrap=True, overflow="ellipsis"),
                Text(row.user_agent[:40], no_wrap=True, overflow="ellipsis")]

    def apply(self, changes: Changes) -> None:
        t = self.query_one(VimTable)
        for rid in changes.evicted:
            if str(rid) in t.rows:
                t.remove_row(str(rid))
        added = False
        for rid in sorted(changes.rows):
            row = self.live.rows.get(rid)
            if row is None:
                continue
            key = str(rid)
            shown = key in t.rows
            if not row_matches(row, self.query_text):
                if shown:
                    t.remove_row(key)
                continue
            cells = self._cells(row)
            if shown:
                for (_, col), value in zip(COLUMNS, cells):
                    t.update_cell(key, col, value)
            else:
                t.add_row(*cells, key=key)
                added = True
        if added and self.follow and t.row_count:
            t.move_cursor(row=t.row_count - 1)
        self._info()

    def rebuild(self) -> None:
        t = self.query_one(VimTable)
        t.clear()
        for row in self.live.rows.values():
            if row_matches(row, self.query_text):
                t.add_row(*self._cells(row), key=str(row.id))
        if self.follow and t.row_count:
            t.move_cursor(row=t.row_count - 1)
        self._info()

    def _info(self) -> None:
        t = self.query_one(VimTable)
        info = Text()
        info.append("follow ● " if self.follow else "follow ○ ", style="bold green" if self.follow else "dim")
        if self.live.requests_total:
            info.append(f"{t.row_count} shown · last {self.live.capacity} kept · {self.live.requests_total} total",
                        style="dim")
        else:
            info.append(self.empty_hint, style="dim")
        self.query_one("#requests-info", Static).update(info)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            t = self.query_one(VimTable)
            if t.row_count:
                t.move_cursor(row=t.row_count - 1)
        self._info()

    def refilter(self) -> None:
        self.rebuild()
