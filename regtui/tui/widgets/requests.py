"""The Requests view: live graphs of the traffic, the live request log (a bounded ring), follow toggle, filter
by text or status, and a detail pane (`enter`) with everything about one request."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.widgets import Input, Sparkline, Static

from regtui.registry.errors import CODES
from regtui.tui.facts import human_size, nearest_digest
from regtui.tui.live import Changes, LiveState, RequestRow, row_matches
from regtui.tui.widgets.common import FilteredView, VimTable

# The path before the client: on a narrow screen what was asked for stays visible.
COLUMNS = (
    ("time", "time"),
    ("method", "method"),
    ("status", "status"),
    ("bytes", "bytes"),
    ("duration", "duration"),
    ("path", "path"),
    ("client", "client"),
    ("user agent", "ua"),
)
_DIGEST_IN_PATH = re.compile(r"(sha256:[0-9a-f]{12})[0-9a-f]{48}([0-9a-f]{4})")
GRAPH_SECONDS = 120


def short_path(path: str) -> str:
    """Digests in paths cut to their first 12 and last 4 hex digits: status, size and duration stay on screen,
    and two digests that differ only at the end still look different (the detail pane shows them whole)."""
    return _DIGEST_IN_PATH.sub(r"\1…\2", path)


@dataclass
class RequestContext:
    """What the detail pane explains a request with: digests the archives hold, `--expect` results, and blobs
    known not to verify."""

    known: dict[str, str] = field(default_factory=dict)
    expect_results: list = field(default_factory=list)
    corrupt: Mapping[str, str] = field(default_factory=dict)


def status_cell(row: RequestRow, corrupt: Mapping[str, str]) -> Text:
    if row.status is None:
        t = Text("…", style="yellow")
    else:
        style = "bold red" if row.status >= 500 else "bold magenta" if row.status >= 400 else "green"
        t = Text(f"{row.status}" + (f" {row.error_code}" if row.error_code else ""), style=style)
    if row.kind == "blob" and row.reference in corrupt:
        t.append(" ✗ corrupt", style="bold red")
    return t


def rate(values: list[float], unit: str) -> str:
    now = values[-1] if values else 0
    peak = max(values) if values else 0
    if unit == "B":
        return f"{human_size(int(now))} · peak {human_size(int(peak))}"
    return f"{now:.0f} · peak {peak:.0f}"


def request_detail(row: RequestRow, ctx: RequestContext) -> Text:
    """Everything about one request, and for a miss what it probably meant."""
    t = Text()

    def line(name: str, value: str, style: str = "") -> None:
        t.append(f"{name:>12}  ", style="dim")
        t.append(f"{value}\n", style=style)

    t.append(f"{row.method} {row.path}\n", style="bold")
    if row.repository:
        line("repository", row.repository)
    if row.reference:
        line("digest" if ":" in row.reference else "tag", row.reference)
    line("client", f"{row.client}   {row.user_agent or '(no user agent)'}")
    line("Accept", ", ".join(row.accept) if row.accept else "(none sent)")
    if row.status is None:
        line("status", "in progress", "yellow")
    else:
        style = "bold red" if row.status >= 400 else "green"
        line("status", str(row.status), style)
    if row.error_code:
        line("error", f"{row.error_code}: {CODES.get(row.error_code, (0, ''))[1]}", "bold red")
    if row.detail:
        line("message", row.detail, "red" if (row.status or 0) >= 400 else "yellow")
    ref = row.reference or ""
    if row.kind == "blob" and ref in ctx.corrupt:
        line("corrupt", f"this blob failed verification: {ctx.corrupt[ref]}", "bold red")
    if row.error_code in ("MANIFEST_UNKNOWN", "BLOB_UNKNOWN") and ":" in ref:
        near = nearest_digest(ref, ctx.known)
        if near is not None:
            other, n = near
            digits = "one hex digit differs" if n == 1 else f"{n} hex digits differ"
            line("did you mean", f"{other}? {digits} ({ctx.known[other]})", "bold yellow")
        for r in ctx.expect_results:
            if r.expectation.digest == ref:
                line("--expect", r.line(), "yellow")
    total = f" of {row.total:,}" if row.total and row.total != row.bytes_sent else ""
    line("bytes", f"{row.bytes_sent:,}{total} ({human_size(row.bytes_sent)})")
    started = time.strftime("%H:%M:%S", time.localtime(row.time)) + f".{int(row.time * 1000) % 1000:03d}"
    took = "still running" if row.duration is None else f"took {row.duration * 1000:.1f} ms"
    line("timing", f"started {started}, {took}")
    return t


class RequestsView(FilteredView):
    filter_id = "requests-filter"
    BINDINGS = [*FilteredView.BINDINGS, Binding("enter", "toggle_detail", "Details", show=False)]

    def __init__(
        self,
        live: LiveState,
        clock: Callable[[], float],
        context: Callable[[], RequestContext] = RequestContext,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.live = live
        self.clock = clock
        self.context = context
        self.follow = True
        self.query_text = ""
        self.empty_hint = "no requests yet: s starts the server, then pull (Manifests has the commands)"
        self.detail_id: int | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="requests-bar"):
            yield Input(placeholder="filter: words, 404, 4xx, err, active (esc clears)", id="requests-filter")
            yield Static(id="requests-info")
        with Horizontal(id="requests-graphs", classes="graphs"):
            for key, label in (("bytes", "bytes/s"), ("requests", "requests/s"), ("errors", "errors/s")):
                with Vertical(classes="graph"):
                    yield Static(Text(label, style="bold"), id=f"graph-{key}-label", classes="graph-label")
                    yield Sparkline([], id=f"graph-{key}", summary_function=max)
        yield VimTable(id="requests-table")
        with VerticalScroll(id="request-detail", classes="detail"):
            yield Static(id="request-detail-text")

    def on_mount(self) -> None:
        t = self.query_one(VimTable)
        for label, key in COLUMNS:
            t.add_column(label, key=key)
        self.query_one("#request-detail").display = False
        self._info()

    def _cells(self, row: RequestRow, corrupt: Mapping[str, str]) -> list:
        dur = row.duration if row.duration is not None else max(0.0, self.clock() - row.time)
        size = human_size(row.bytes_sent)
        if row.status is None and row.total:
            size = f"{human_size(row.bytes_sent)}/{human_size(row.total)}"
        return [
            time.strftime("%H:%M:%S", time.localtime(row.time)),
            row.method,
            status_cell(row, corrupt),
            Text(size, justify="right"),
            Text(
                f"{dur * 1000:.0f} ms" if dur < 10 else f"{dur:.1f} s",
                justify="right",
                style="" if row.duration is not None else "dim",
            ),
            Text(short_path(row.path), no_wrap=True, overflow="ellipsis"),
            row.client,
            Text(row.user_agent[:40], no_wrap=True, overflow="ellipsis"),
        ]

    def apply(self, changes: Changes) -> None:
        t = self.query_one(VimTable)
        corrupt = self.context().corrupt
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
            cells = self._cells(row, corrupt)
            if shown:
                for (_, col), value in zip(COLUMNS, cells, strict=True):
                    t.update_cell(key, col, value, update_width=True)  # a growing size keeps its unit
            else:
                t.add_row(*cells, key=key)
                added = True
        if added and self.follow and t.row_count:
            t.move_cursor(row=t.row_count - 1)
        if self.detail_id is not None and self.detail_id in changes.rows:
            self._show_detail()
        self._info()

    def rebuild(self) -> None:
        t = self.query_one(VimTable)
        t.clear()
        corrupt = self.context().corrupt
        for row in self.live.rows.values():
            if row_matches(row, self.query_text):
                t.add_row(*self._cells(row, corrupt), key=str(row.id))
        if self.follow and t.row_count:
            t.move_cursor(row=t.row_count - 1)
        self._info()

    def draw_graphs(self) -> None:
        if not self.query("#graph-bytes"):  # not composed yet
            return
        now = self.clock()
        for key, series, unit in (
            ("bytes", self.live.bytes_rate, "B"),
            ("requests", self.live.requests_rate, ""),
            ("errors", self.live.errors_rate, ""),
        ):
            values = series.values(now, GRAPH_SECONDS)
            self.query_one(f"#graph-{key}", Sparkline).data = values
            name = {"bytes": "bytes/s", "requests": "requests/s", "errors": "errors/s"}[key]
            self.query_one(f"#graph-{key}-label", Static).update(
                Text.assemble((name, "bold"), f"  {rate(values, unit)}", no_wrap=True, overflow="ellipsis")
            )

    def _info(self) -> None:
        t = self.query_one(VimTable)
        info = Text()
        info.append("follow ● " if self.follow else "follow ○ ", style="bold green" if self.follow else "dim")
        if self.live.requests_total:
            info.append(
                f"{t.row_count} shown · last {self.live.capacity} kept · {self.live.requests_total} total"
                " · enter: details",
                style="dim",
            )
        else:
            info.append(self.empty_hint, style="dim")
        self.query_one("#requests-info", Static).update(info)

    def _row_at_cursor(self) -> RequestRow | None:
        t = self.query_one(VimTable)
        if not t.row_count:
            return None
        key = t.coordinate_to_cell_key(Coordinate(t.cursor_row, 0)).row_key.value
        return self.live.rows.get(int(key)) if key is not None else None

    def action_toggle_detail(self) -> None:
        pane = self.query_one("#request-detail")
        if pane.display:
            pane.display = False
            self.detail_id = None
            return
        pane.display = True
        self._show_detail()

    def on_data_table_row_highlighted(self, event: VimTable.RowHighlighted) -> None:
        event.stop()
        if self.query_one("#request-detail").display:
            self._show_detail()

    def on_data_table_row_selected(self, event: VimTable.RowSelected) -> None:
        event.stop()
        self.action_toggle_detail()

    def _show_detail(self) -> None:
        row = self._row_at_cursor()
        self.detail_id = row.id if row else None
        box = self.query_one("#request-detail-text", Static)
        box.update(request_detail(row, self.context()) if row else Text("no request selected", style="dim"))

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            t = self.query_one(VimTable)
            if t.row_count:
                t.move_cursor(row=t.row_count - 1)
        self._info()

    def refilter(self) -> None:
        self.rebuild()
