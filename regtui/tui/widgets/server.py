"""The Server view: start or stop the embedded registry, where it listens, and its own log lines."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, RichLog, Static

from regtui.oci.model import Archive, Image, Root
from regtui.registry.events import ServerLog, ServerState
from regtui.tui.facts import pull_commands, ref_of

if TYPE_CHECKING:
    from regtui.oci.apply import ExpectResult


@runtime_checkable
class ServerToggle(Protocol):
    """What the view's button and address fields ask of the app (RegtuiApp's server control)."""

    def action_toggle_server(self) -> None: ...


class ServerView(Vertical):
    def __init__(self, host: str, port: int, **kwargs):
        super().__init__(**kwargs)
        self.host = host
        self.port = port
        self.remote: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="server-state")
        with Horizontal(id="server-form"):
            yield Label("host")
            yield Input(self.host, id="server-host", placeholder="127.0.0.1")
            yield Label("port")
            yield Input(str(self.port), id="server-port", placeholder="5000", type="integer")
            yield Button("Start (s)", id="server-toggle", variant="success")
        yield Static(id="server-names")
        yield Static("server log", classes="caption")
        yield RichLog(id="server-log", max_lines=500, wrap=True, markup=False)

    def watching(self, label: str) -> None:
        """`regtui watch`: no server of ours to start; this view keeps the remote server's state and log."""
        self.remote = label
        for part in ("#server-form", "#server-names"):
            self.query_one(part).display = False

    def bind_address(self) -> tuple[str, int] | str:
        """(host, port) from the form, or the reason it is not usable."""
        host = self.query_one("#server-host", Input).value.strip() or "127.0.0.1"
        raw = self.query_one("#server-port", Input).value.strip() or "0"
        try:
            port = int(raw)
        except ValueError:
            return f"port {raw!r} is not a number"
        if not 0 <= port <= 65535:
            return f"port {port} is outside 0–65535"
        return host, port

    def show_state(self, state: ServerState, requests: int) -> None:
        t = Text()
        if state.state == "serving":
            t.append("● serving  ", style="bold green")
            t.append(state.url or "", style="bold underline")
            t.append(f"   {requests} requests" + ("" if self.remote else "   (u copies the URL, s stops)"), style="dim")
        elif state.state == "failed":
            t.append("✗ not serving: ", style="bold red")
            t.append(state.error or "unknown error", style="red")
            if not self.remote:
                t.append("\nchange the host or port below and press s to try again", style="dim")
        else:
            t.append(f"○ {state.state}", style="bold yellow" if state.state != "stopped" else "bold")
            if self.remote:
                t.append(f"   as reported by {self.remote}", style="dim")
            elif state.state == "stopped":
                t.append("   press s (or the button) to serve the open archives read-only over HTTP", style="dim")
        self.query_one("#server-state", Static).update(t)
        running = state.state in ("serving", "starting")
        btn = self.query_one("#server-toggle", Button)
        btn.label = "Stop (s)" if running else "Start (s)"
        btn.variant = "error" if running else "success"
        for box in self.query(Input):
            box.disabled = running

    def show_names(self, archives: list[Archive], hostport: str, expect_results: Sequence[ExpectResult] = ()) -> None:
        """Each served reference with a pull command. A tag in two archives is served from the first one given;
        the other image is then reachable by digest only, and says so with that digest."""
        t = Text()
        t.append("served images\n", style="bold")
        owner: dict[tuple[str, str], tuple[Archive, str]] = {}  # (repository, tag) -> first archive, digest
        for a in archives:
            for root in a.roots:  # untagged images are served by digest
                digest = root.manifests[0].digest
                for ref in [f"{root.repository}:{tag}" for tag in root.tags] or [ref_of(root)]:
                    first = owner.setdefault((root.repository, ref), (a, digest)) if root.tags else (a, digest)
                    t.append(f"  {ref}", style="cyan")
                    if first[0] is a:
                        t.append(f"   {pull_commands(hostport, ref)[1][1]}\n", style="dim")
                        continue
                    by_digest = f"{root.repository}@{digest}"
                    same = " (the same image)" if first[1] == digest else ""
                    t.append(
                        f"  in {_name(a)}: the tag is served from {_name(first[0])}, given first{same}; "
                        "this one is reachable by digest only:\n",
                        style="yellow",
                    )
                    t.append(f"    {pull_commands(hostport, by_digest)[0][1]}\n", style="dim")
                for r in expect_results:  # --expect matched: pull by that digest too, as the nodes will
                    if r.matched and r.archive is a and any(r.image is i for i in _images(root)):
                        pinned = f"{root.repository}@{r.expectation.digest}"
                        t.append("  by the expected digest (--expect matched):\n", style="cyan")
                        t.append(f"    {pull_commands(hostport, pinned)[0][1]}\n", style="dim")
        self.query_one("#server-names", Static).update(t)

    def add_logs(self, logs: list[ServerLog]) -> None:
        log = self.query_one(RichLog)
        for rec in logs:
            stamp = time.strftime("%H:%M:%S", time.localtime(rec.time)) if rec.time else "--:--:--"
            level = rec.level.lower()
            message = rec.message.replace(" (CTRL + C to quit)", "")  # Hypercorn's hint; here q or s stops it
            style = "red" if level in ("error", "critical") else "yellow" if level == "warning" else ""
            log.write(Text(f"{stamp} {level:<7} {message}", style=style))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._toggle()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._toggle()

    def _toggle(self) -> None:
        if isinstance(self.app, ServerToggle):
            self.app.action_toggle_server()


def _name(archive: Archive) -> str:
    return os.path.basename(archive.path.rstrip("/"))


def _images(root: Root) -> list[Image]:
    return root.images() if hasattr(root, "images") else [root]
