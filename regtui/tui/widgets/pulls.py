"""The Pulls view: one row per client pull (grouped by the server), with blobs done and a progress bar."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from regtui.registry.events import PullProgress
from regtui.tui.facts import human_size
from regtui.tui.widgets.common import VimTable

BAR = 20


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


class PullsView(Vertical):
    def __init__(self, clock, **kwargs):
        super().__init__(**kwargs)
        self.clock = clock
        self.empty_hint = ("No pulls yet. Start the server (s) and pull with one of the commands from the "
                           "Manifests view.")

    def compose(self) -> ComposeResult:
        yield Static("Each row is one client pulling one image: its manifest request, then the blobs it fetches.",
                     id="pulls-info")
        yield VimTable(id="pulls-table")

    def on_mount(self) -> None:
        t = self.query_one(VimTable)
        for label, key in (("client", "client"), ("image", "image"), ("blobs", "blobs"), ("bytes", "bytes"),
                           ("progress", "bar"), ("speed", "speed"), ("state", "state"), ("user agent", "ua")):
            t.add_column(label, key=key)

    def show(self, pulls: dict[str, PullProgress]) -> None:
        t = self.query_one(VimTable)
        now = self.clock()
        for key in [k.value for k in t.rows if k.value not in pulls]:
            t.remove_row(key)
        for key, p in pulls.items():
            cells = [p.client, f"{p.repository}:{p.reference}" if not p.reference.startswith("sha256:")
                     else f"{p.repository}@{p.reference[:19]}",
                     f"{p.blobs_done}/{p.blobs_total}",
                     Text(f"{human_size(p.bytes_done)} / {human_size(p.bytes_total)}", justify="right"),
                     bar(p.bytes_done, p.bytes_total, p.finished), Text(speed(p, now), justify="right"),
                     Text("done", style="green") if p.finished else Text("pulling", style="bold cyan"),
                     Text(p.user_agent, no_wrap=True, overflow="ellipsis")]
            if key in t.rows:
                for col, value in zip(("client", "image", "blobs", "bytes", "bar", "speed", "state", "ua"), cells):
                    t.update_cell(key, col, value)
            else:
                t.add_row(*cells, key=key)
        active = sum(1 for p in pulls.values() if not p.finished)
        self.query_one("#pulls-info", Static).update(
            Text(f"{len(pulls)} pull(s), {active} in progress. Each row is one client pulling one image: "
                 "its manifest request, then the blobs it fetches.") if pulls else
            self.empty_hint)
