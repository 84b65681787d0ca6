"""The push screen: copy the selected archive's images into a real registry (regtui.push), with progress.

The push runs in a thread on its own event loop (like the server), so the UI keeps answering keys. Closing the
screen cancels it: the push task is cancelled on its loop, which closes its connections; what completed is not
sent again by the next push.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, RichLog, Static

from regtui.oci.model import Archive
from regtui.tui.facts import human_size

if TYPE_CHECKING:
    from textual.worker import Worker

    from regtui.push.events import Summary
    from regtui.push.names import Target
    from regtui.push.plan import Plan


@dataclass
class PushEvent(Message):
    event: object  # a regtui.push.events dataclass


@dataclass
class PushEnded(Message):
    summary: Summary | None
    error: str | None = None


class PushScreen(ModalScreen):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, archive: Archive, target: str = ""):
        super().__init__()
        self.archive = archive
        self.target = target
        self.total = 0
        self.done: dict[str, int] = {}  # blob digest -> bytes the registry has
        self.running = False
        self.worker: Worker[None] | None = None
        self._cancel = threading.Event()
        self._push: tuple[asyncio.AbstractEventLoop, asyncio.Task[Summary]] | None = None  # while it runs

    def compose(self) -> ComposeResult:
        with Vertical(id="push"):
            name = os.path.basename(self.archive.path.rstrip("/"))
            yield Static(
                Text.assemble(
                    ("Push ", "bold"),
                    (name, "bold cyan"),
                    " into a registry: every image and tag, blobs the registry already has "
                    "are skipped, an interrupted push resumes.",
                ),
                id="push-title",
            )
            with Horizontal(id="push-form"):
                yield Label("registry")
                yield Input(
                    self.target, placeholder="HOST[:PORT][/PREFIX], e.g. registry.local:5000/team", id="push-target"
                )
                yield Checkbox("insecure (HTTP, no TLS check)", id="push-insecure")
                yield Button("Push", id="push-start", variant="primary")
                yield Button("Close", id="push-close")
            yield ProgressBar(id="push-progress", show_eta=False)
            yield Static(
                "Loopback registries (127.0.0.1, localhost) are reached over plain HTTP, as docker does; "
                "credentials come from ~/.docker/config.json.",
                id="push-status",
            )
            yield RichLog(id="push-log", wrap=True, markup=False, max_lines=2000)

    def on_mount(self) -> None:
        self.query_one("#push-target", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "push-start":
            self.start()
        else:
            self.action_close()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.start()

    def action_close(self) -> None:
        self._cancel.set()
        running = self._push
        if running is not None:
            loop, task = running
            loop.call_soon_threadsafe(task.cancel)
        self.dismiss()

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#push-status", Static).update(Text(text, style=style))

    def start(self) -> None:
        from regtui.push.errors import PushError
        from regtui.push.names import parse_target
        from regtui.push.plan import build_plan

        if self.running:
            return
        raw = self.query_one("#push-target", Input).value
        try:
            target = parse_target(raw)
            plan = build_plan(self.archive, target)
        except PushError as e:
            self._status(e.line(), "bold red")
            return
        self.running = True
        self.total = plan.total_bytes()
        self.done.clear()
        self.query_one(ProgressBar).update(total=max(self.total, 1), progress=0)
        self.query_one("#push-start", Button).disabled = True
        self._status(f"pushing {human_size(self.total)} to {raw.strip()}…", "bold")
        self.worker = self.push_worker(target, plan, self.query_one("#push-insecure", Checkbox).value)

    @work(thread=True, exclusive=True, group="push", exit_on_error=False)
    def push_worker(self, target: Target, plan: Plan, insecure: bool) -> None:
        from regtui.push.client import PushClient
        from regtui.push.errors import PushError
        from regtui.push.run import run_push

        def emit(e: object) -> None:
            self.post_message(PushEvent(e))

        async def push() -> Summary:
            async with PushClient(target, insecure=insecure, on_event=emit) as client:
                return await run_push(plan, client, jobs=4, on_event=emit)

        async def main() -> Summary:
            task = asyncio.create_task(push())
            self._push = (asyncio.get_running_loop(), task)
            if self._cancel.is_set():  # closed before the task was known: cancel it here
                task.cancel()
            try:
                return await task
            finally:
                self._push = None

        try:
            self.post_message(PushEnded(asyncio.run(main())))
        except asyncio.CancelledError:
            self.post_message(PushEnded(None, "cancelled"))
        except PushError as e:
            self.post_message(PushEnded(None, e.line()))
        except Exception as e:  # the UI must outlive any push failure
            self.post_message(PushEnded(None, f"{type(e).__name__}: {e}"))

    def on_push_event(self, message: PushEvent) -> None:
        from regtui.push.events import BlobDone, BlobProgress, ManifestDone, Note, Retry

        e = message.event
        log = self.query_one(RichLog)
        if isinstance(e, BlobProgress):
            self.done[f"{e.repo}@{e.digest}"] = e.done
        elif isinstance(e, BlobDone):
            self.done[f"{e.repo}@{e.digest}"] = e.size
            log.write(e.line())
        elif isinstance(e, ManifestDone):
            log.write(e.line())
        elif isinstance(e, Note):
            log.write(Text(f"note: {e.text}", style="yellow"))
        elif isinstance(e, Retry):
            log.write(Text(f"retry {e.attempt}: {e.what} ({e.reason}); again in {e.delay:.1f}s", style="yellow"))
        self.query_one(ProgressBar).update(progress=min(sum(self.done.values()), self.total))

    def on_push_ended(self, message: PushEnded) -> None:
        self.running = False
        self.query_one("#push-start", Button).disabled = False
        if message.error:
            self._status(f"push failed: {message.error}", "bold red")
        else:
            self.query_one(ProgressBar).update(total=max(self.total, 1), progress=max(self.total, 1))
            assert message.summary is not None
            self._status(f"✓ {message.summary.line()}", "bold green")
