"""The status line: what is open, the digest the selected image is served under (what a tarball lacks, and
what `--expect` pins), and whether (and where) it is being served."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from regtui.oci.model import Archive
from regtui.registry.events import ServerState
from regtui.tui.facts import Selection, archive_summary, human_size, ref_of
from regtui.watch.feed import SourceState


def served_line(sel: Selection | None, expect_results: list) -> Text:
    """`registry:2.8.1 is served as sha256:<whole digest>`, and each `--expect` digest for it with ✓ or ✗."""
    t = Text()
    if sel is None or sel.root is None:
        return t
    m = sel.root.manifests[0]  # the default form: what a client gets by tag
    t.append(f" {ref_of(sel.root, sel.image)}", style="bold")
    t.append(" served as ")
    t.append(m.digest, style="bold cyan")
    mine = [
        r
        for r in expect_results
        if (r.image is not None and r.image is sel.image) or (r.image is None and r.archive is sel.archive)
    ]
    for r in mine:
        if r.matched and r.expectation.digest == m.digest:
            t.append("  ✓ as expected", style="bold green")
            t.append(f" ({r.expectation.source})", style="dim")
        elif r.matched:
            t.append(f"  ✓ expected {r.expectation.digest} also served", style="green")
        else:
            t.append(f"  ✗ expected {r.expectation.digest}: no match", style="bold red")
            t.append(" (3 Manifests says why)", style="dim")
    return t


class StatusLine(Static):
    note = ""  # e.g. the selected image's efficiency, once the Files view has indexed it

    def show(
        self,
        archives: list[Archive],
        server: ServerState,
        requests: int,
        sent: int,
        bind: str,
        loading: str | None = None,
        selected: Text | None = None,
        warning: str | None = None,
    ) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" regtui ", style="bold reverse")
        t.append("  ")
        if loading:
            t.append(loading, style="italic")
        elif archives:
            names, formats, images, size = archive_summary(archives)
            t.append(f"{images} image{'s' * (images != 1)}  ·  {human_size(size)}  ·  ")
            t.append(names, style="bold")  # before the formats: with many archives, the names matter more
            t.append(f"  ·  {formats}")
            if self.note:
                t.append(f"  ·  {self.note}")
        else:
            t.append("no archive open", style="italic")
        t.append("\n")
        t.append_text(selected or Text(""))
        t.append("\n")
        state = server.state
        if state == "serving":
            t.append(" ● serving ", style="bold green")
            t.append(server.url or bind, style="bold underline")
            t.append(f"  ·  {requests} request{'s' * (requests != 1)}  ·  {human_size(sent)} sent")
        elif state in ("starting", "stopping"):
            t.append(f" ◌ {state} ", style="bold yellow")
            t.append(bind)
        elif state == "failed":
            t.append(" ✗ server failed: ", style="bold red")
            t.append(server.error or "unknown error", style="red")
        else:
            t.append(" ○ stopped ", style="bold")
            t.append(f"press s to serve on http://{bind}", style="dim")
            if requests:
                t.append(f"  ·  {requests} requests  ·  {human_size(sent)} sent earlier", style="dim")
        if warning:
            t.append(f"  ⚠ {warning}", style="bold red")
        self.update(t)

    def show_watch(self, label: str, source: SourceState | None, server: ServerState, requests: int, sent: int) -> None:
        """`regtui watch`: where the events come from and how that goes, then the remote server's state."""
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" regtui ", style="bold reverse")
        t.append("  watching ")
        t.append(label, style="bold underline")
        state = source.state if source is not None else "starting"
        style = {
            "connected": "bold green",
            "reading": "bold green",
            "following": "bold green",
            "failed": "bold red",
            "ended": "bold",
        }.get(state, "bold yellow")
        mark = {"connected": "●", "reading": "●", "following": "●", "failed": "✗", "ended": "○"}.get(state, "◌")
        t.append(f"  {mark} {state}", style=style)
        if source is not None and source.detail:
            t.append(f" {source.detail}", style="red" if state == "failed" else "dim")
        t.append("\n")
        remote = server.state if server.state != "stopped" or requests else "unknown"
        t.append(f" server {remote} ", style="bold green" if remote == "serving" else "bold")
        if server.url:
            t.append(server.url, style="underline")
        t.append(f"  ·  {requests} request{'s' * (requests != 1)}  ·  {human_size(sent)} sent")
        self.update(t)
