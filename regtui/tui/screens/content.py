"""A file's content from the Files view: text highlighted by its extension, binaries as a hex dump head, with the
size and sha256 of the whole file. Read in a thread worker, streamed from the archive, bounded."""

from __future__ import annotations

import threading

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from regtui.oci.contents import ImageFiles
from regtui.oci.contents.read import ContentError, FileContent, read_file
from regtui.oci.hashing import Cancelled
from regtui.oci.model import Layer
from regtui.tui.facts import human_size

SHOWN = 256 * 1024  # highlighted text shown; the sha256 covers the whole file
HEX = 4096


def hexdump(data: bytes) -> str:
    return "\n".join(
        f"{off:08x}  {' '.join(f'{b:02x}' for b in data[off : off + 16]):<47}  "
        + "".join(chr(b) if 32 <= b < 127 else "." for b in data[off : off + 16])
        for off in range(0, len(data), 16)
    )


class ContentScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, files: ImageFiles, layers: list[Layer], path: str, layer: int | None):
        super().__init__()
        self.files, self.image_layers, self.path, self.from_layer = files, layers, path, layer
        self.cancel = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="content-box"):
            yield Static(Text(f"/{self.path}  reading…", style="bold"), id="content-head")
            with VerticalScroll(id="content-scroll"):
                yield Static(id="content-body")

    def on_mount(self) -> None:
        self.read_worker()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def read_worker(self) -> None:
        try:
            got = read_file(
                self.files, self.image_layers, self.path, layer=self.from_layer, head=SHOWN, cancel=self.cancel
            )
        except ContentError as e:
            self.app.call_from_thread(self._failed, str(e))
            return
        except Cancelled:
            return
        except OSError as e:
            self.app.call_from_thread(self._failed, f"cannot read the archive: {e.strerror or e}")
            return
        self.app.call_from_thread(self._show, got)

    def _failed(self, why: str) -> None:
        self.query_one("#content-head", Static).update(Text(f"/{self.path}: {why}", style="bold red"))

    def _show(self, got: FileContent) -> None:
        head = Text(f"/{self.path}", style="bold")
        head.append(
            f"  layer {got.layer + 1}  ·  {got.kind}  ·  {human_size(got.size)} ({got.size:,} bytes)"
            f"  ·  sha256:{got.sha256}",
            style="dim",
        )
        if got.truncated:
            head.append(f"  ·  first {human_size(len(got.head))} shown", style="italic")
        self.query_one("#content-head", Static).update(head)
        body = self.query_one("#content-body", Static)
        if got.kind == "symlink":
            body.update(Text(f"symbolic link → {got.link}"))
        elif got.is_text:
            text = got.head.decode("utf-8", "replace")
            body.update(
                Syntax(
                    text,
                    Syntax.guess_lexer(self.path, code=text[:4096]),
                    line_numbers=True,
                    word_wrap=False,
                    theme="ansi_dark",
                )
            )
        else:
            body.update(Text(hexdump(got.head[:HEX])))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.cancel.set()
        self.dismiss()
