"""The status line: what is open, and whether (and where) it is being served."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from regtui.oci.model import Archive
from regtui.registry.events import ServerState
from regtui.tui.facts import archive_summary, human_size


class StatusLine(Static):
    note = ""  # e.g. the selected image's efficiency, once the Files view has indexed it

    def show(self, archives: list[Archive], server: ServerState, requests: int, sent: int, bind: str,
             loading: str | None = None) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" regtui ", style="bold reverse")
        t.append("  ")
        if loading:
            t.append(loading, style="italic")
        elif archives:
            names, formats, images, size = archive_summary(archives)
            t.append(names, style="bold")
            t.append(f"  {formats}  ·  {images} image{'s' * (images != 1)}  ·  {human_size(size)}")
            if self.note:
                t.append(f"  ·  {self.note}")
        else:
            t.append("no archive open", style="italic")
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
        self.update(t)

    def show_watch(self, label: str, source, server: ServerState, requests: int, sent: int) -> None:
        """`regtui watch`: where the events come from and how that goes, then the remote server's state."""
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" regtui ", style="bold reverse")
        t.append("  watching ")
        t.append(label, style="bold underline")
        state = source.state if source is not None else "starting"
        style = {"connected": "bold green", "reading": "bold green", "following": "bold green",
                 "failed": "bold red", "ended": "bold"}.get(state, "bold yellow")
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
