"""The Pulls view: one row per client pull (grouped by the server), with blobs done, a progress bar and what
became of it; below, the selected pull's bytes/s and its timeline (the manifest, then each blob as a bar)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import Sparkline, Static

from regtui.registry.events import PullProgress
from regtui.tui.facts import human_size
from regtui.tui.live import LiveState, Span
from regtui.tui.widgets.common import VimTable

BAR = 20
IDLE = 5.0  # seconds without a blob request after the manifest: the client only wanted the manifest
TIMELINE = 60  # columns of a timeline bar
COLS = ("client", "image", "blobs", "bytes", "bar", "speed", "state", "ua")
STATE_STYLE = {
    "done": "green",
    "pulling": "bold cyan",
    "failed": "bold red",
    "incomplete": "bold yellow",
    "manifest only": "dim",
}


def bar(done: int, total: int, finished: bool) -> Text:
    frac = 1.0 if total <= 0 and finished else (done / total if total > 0 else 0.0)
    frac = max(0.0, min(1.0, frac))
    filled = round(frac * BAR)
    t = Text("━" * filled, style="green" if finished else "cyan")
    t.append("━" * (BAR - filled), style="grey30")
    t.append(f" {frac * 100:3.0f}%")
    return t


def speed(p: PullProgress, now: float) -> str:
    end = p.updated if p.finished else max(now, p.updated)
    secs = end - p.started
    if secs <= 0:
        return "—"
    return f"{human_size(int(p.bytes_done / secs))}/s"


def state_of(p: PullProgress, now: float) -> str:
    """The pull's state; a running pull that fetched nothing for a while after its manifest is shown as
    "manifest only" at once (`skopeo inspect --raw`), not after the server's idle timeout."""
    if not p.finished and not p.error and p.blobs_done == 0 and p.bytes_done == 0 and now - p.updated > IDLE:
        return "manifest only"
    return p.state


def timeline(spans: list[Span], now: float, width: int = TIMELINE) -> Text:
    """Each request of a pull as a bar on one time axis: a stalled or slow blob is the long bar."""
    t = Text()
    if not spans:
        return Text("no requests of this pull are in the request log", style="dim")
    start = min(s.start for s in spans)
    end = max((s.end if s.end is not None else now) for s in spans)
    length = max(end - start, 1e-3)
    t.append(f"{'':<20}0 s{'':<{width - 10}}{length:.2f} s\n", style="dim")
    for s in spans:
        stop = s.end if s.end is not None else now
        a = int((s.start - start) / length * (width - 1))
        b = max(a + 1, int((stop - start) / length * (width - 1)) + 1)
        label = s.label if s.label == "manifest" else s.label.split(":")[-1][:12]
        style = "green" if s.ok and s.end is not None else "cyan" if s.end is None else "bold red"
        t.append(f"{label:<20}", style="bold" if s.label == "manifest" else "")
        t.append(" " * a + "█" * (b - a), style=style)
        t.append(" " * (width - b) + f" {(stop - s.start) * 1000:.0f} ms\n", style="dim")
    return t


class PullsView(Vertical):
    def __init__(self, clock: Callable[[], float], live: LiveState | None = None, **kwargs):
        super().__init__(**kwargs)
        self.clock = clock
        self.empty_hint = (
            "No pulls yet. Start the server (s) and pull with one of the commands from the Manifests view."
        )
        self.live = live or LiveState(clock=clock)

    def compose(self) -> ComposeResult:
        yield Static(
            "Each row is one client pulling one image: its manifest request, then the blobs it fetches.",
            id="pulls-info",
        )
        yield VimTable(id="pulls-table")
        yield Static(id="pull-graph-label", classes="graph-label")
        yield Sparkline([], id="pull-graph", summary_function=max)
        yield Static(id="pull-timeline")

    def on_mount(self) -> None:
        t = self.query_one(VimTable)
        for label, key in (
            ("client", "client"),
            ("image", "image"),
            ("blobs", "blobs"),
            ("bytes", "bytes"),
            ("progress", "bar"),
            ("speed", "speed"),
            ("state", "state"),
            ("user agent", "ua"),
        ):
            t.add_column(label, key=key)

    def show(self, pulls: dict[str, PullProgress]) -> None:
        t = self.query_one(VimTable)
        now = self.clock()
        for gone in [k for k in t.rows if k.value not in pulls]:
            t.remove_row(gone)
        for key, p in pulls.items():
            state = state_of(p, now)
            cells = [
                p.client,
                f"{p.repository}:{p.reference}"
                if not p.reference.startswith("sha256:")
                else f"{p.repository}@{p.reference[:19]}",
                f"{p.blobs_done}/{p.blobs_total}",
                Text(f"{human_size(p.bytes_done)} / {human_size(p.bytes_total)}", justify="right"),
                bar(p.bytes_done, p.bytes_total, state == "done"),
                Text(speed(p, now), justify="right"),
                Text(state, style=STATE_STYLE.get(state, "")),
                Text(p.user_agent, no_wrap=True, overflow="ellipsis"),
            ]
            if key in t.rows:
                for col, value in zip(COLS, cells, strict=True):
                    t.update_cell(key, col, value, update_width=True)  # live values keep their units
            else:
                t.add_row(*cells, key=key)
        active = sum(1 for p in pulls.values() if not p.finished)
        self.query_one("#pulls-info", Static).update(
            Text(
                f"{len(pulls)} pull(s), {active} in progress. Each row is one client pulling one image: "
                "its manifest request, then the blobs it fetches."
            )
            if pulls
            else self.empty_hint
        )
        self.draw_selected()

    def _selected(self) -> PullProgress | None:
        t = self.query_one(VimTable)
        if not t.row_count:
            return None
        key = t.coordinate_to_cell_key(Coordinate(t.cursor_row, 0)).row_key.value
        return self.live.pulls.get(key) if key is not None else None

    def draw_selected(self) -> None:
        """The selected pull's bytes/s over its life, and its timeline; with an error, the error."""
        if not self.query("#pull-graph"):  # not composed yet
            return
        p = self._selected()
        label = self.query_one("#pull-graph-label", Static)
        if p is None:
            label.update("")
            self.query_one("#pull-graph", Sparkline).data = []
            self.query_one("#pull-timeline", Static).update("")
            return
        now = self.clock()
        end = p.updated if p.finished else now
        secs = max(30, min(120, int(end - p.started) + 2))  # a short pull stays a spike, not a block
        series = self.live.pull_rates.get(p.key)
        values = series.values(end + 1, secs) if series else []
        self.query_one("#pull-graph", Sparkline).data = values
        head = Text.assemble(
            ("bytes/s", "bold"),
            f"  {p.client} {p.repository}:{p.reference}  "
            f"peak {human_size(int(max(values, default=0)))}/s  · over {secs} s",
        )
        if p.error:
            head.append(f"\n✗ {p.error}", style="bold red")
        label.update(head)
        self.query_one("#pull-timeline", Static).update(timeline(self.live.timelines.get(p.key, []), now))

    def on_data_table_row_highlighted(self, event: VimTable.RowHighlighted) -> None:
        event.stop()
        self.draw_selected()
