"""The Manifests view: every form served for the selection, which one clients get, its exact bytes,
and ready-to-paste pull commands for the running server."""

from __future__ import annotations

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from regtui.oci.digests import short
from regtui.tui.facts import (
    Form,
    Selection,
    client_choices,
    manifest_forms,
    pretty_json,
    pull_commands,
    ref_of,
)
from regtui.tui.widgets.common import VimTable, row_index


class ManifestsView(Vertical):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.selection: Selection | None = None
        self.forms: list[Form] = []
        self.hostport = "127.0.0.1:5000"
        self.expect_results: list = []  # regtui.oci.forensics.ExpectResult for --expect digests

    def compose(self) -> ComposeResult:
        yield VimTable(id="forms-table")
        yield Static(id="manifest-expected")
        with Horizontal(id="manifest-lower"):
            with VerticalScroll(id="manifest-bytes", classes="detail"):
                yield Static(id="manifest-bytes-text")
            with Vertical(id="manifest-side"):
                yield Static(id="manifest-clients")
                yield Static("pull commands (enter copies):", classes="caption")
                yield OptionList(id="pull-commands")

    def on_mount(self) -> None:
        t = self.query_one("#forms-table", VimTable)
        for label, key in (
            ("form", "form"),
            ("digest", "digest"),
            ("media type", "type"),
            ("size", "size"),
            ("by default", "default"),
        ):
            t.add_column(label, key=key)

    def show(self, selection: Selection, hostport: str | None = None, expect_results: list | None = None) -> None:
        self.selection = selection
        if hostport:
            self.hostport = hostport
        if expect_results is not None:
            self.expect_results = expect_results
        t = self.query_one("#forms-table", VimTable)
        t.clear()
        self.forms = manifest_forms(selection.root, selection.image) if selection.root else []
        for i, f in enumerate(self.forms):
            t.add_row(
                f.label,
                short(f.manifest.digest),
                f.manifest.media_type,
                Text(str(f.manifest.size), justify="right"),
                Text("✓ served by tag", style="bold green") if f.default else Text("on request", style="dim"),
                key=str(i),
            )
        self._show_expected()
        self._show_clients()
        self._show_commands()
        self._show_bytes()

    def _relevant(self) -> list:
        sel = self.selection
        return [
            r
            for r in self.expect_results
            if sel
            and ((r.image is not None and r.image is sel.image) or (r.image is None and r.archive is sel.archive))
        ]

    def _show_expected(self) -> None:
        """Digests someone expects (--expect): whether this image serves them, and if not, why."""
        box = self.query_one("#manifest-expected", Static)
        results = self._relevant()
        box.display = bool(results)
        t = Text()
        for r in results:
            ok = r.matched
            t.append("✓ " if ok else "✗ ", style="bold green" if ok else "bold red")
            t.append(f"expected {r.expectation.label()}", style="bold")
            t.append(f" ({r.expectation.source}): ")
            t.append(
                ("served" if r.status == "matched-as-served" else f"served by variant {r.variant}")
                if ok
                else "no match",
                style="green" if ok else "red",
            )
            t.append(f" — {r.explanation}\n", style="dim")
        box.update(t)

    def set_hostport(self, hostport: str) -> None:
        if hostport != self.hostport:
            self.hostport = hostport
            self._show_commands()

    def _show_clients(self) -> None:
        box = self.query_one("#manifest-clients", Static)
        if not self.selection or not self.selection.root:
            box.update("")
            return
        t = Table(
            title="what a client pulling by tag gets",
            title_justify="left",
            box=None,
            padding=(0, 1),
            show_header=False,
            title_style="bold",
        )
        t.add_column(style="cyan", no_wrap=True, min_width=19)
        t.add_column(overflow="fold")
        for client, digest, reason in client_choices(self.selection.root):
            form = next((f.label for f in self.forms if f.manifest.digest == digest), short(digest))
            t.add_row(client, Text(form, style="bold") if digest != "—" else Text(f"nothing: {reason}", style="red"))
        box.update(t)

    def _show_commands(self) -> None:
        ol = self.query_one("#pull-commands", OptionList)
        ol.clear_options()
        if not self.selection or not self.selection.root:
            return
        ref = ref_of(self.selection.root, self.selection.image)
        for tool, cmd in pull_commands(self.hostport, ref):
            ol.add_option(Option(cmd, id=tool))
        pinned = {r.expectation.digest for r in self._relevant() if r.matched}
        for digest in sorted(pinned - {ref.partition("@")[2]}):  # as the nodes pinning it will pull
            for tool, cmd in pull_commands(self.hostport, f"{self.selection.root.repository}@{digest}"):
                ol.add_option(Option(cmd, id=f"{tool}-{digest}"))
        pkg = self.selection.archive.package
        for i, name in enumerate(pkg.rewritten_names(self.selection.root) if pkg is not None else []):
            # The name Zarf's agent rewrites pods to: regtui answers it as the in-cluster registry would.
            ol.add_option(Option(f"ctr image pull --plain-http {self.hostport}/{name}", id=f"zarf-{i}"))
        ol.highlighted = 0

    def _current(self) -> Form | None:
        t = self.query_one("#forms-table", VimTable)
        if not self.forms or not t.row_count:
            return None
        return self.forms[row_index(t.cursor_row_key())]

    def on_data_table_row_highlighted(self, event: VimTable.RowHighlighted) -> None:
        event.stop()
        self._show_bytes()

    def _show_bytes(self) -> None:
        box = self.query_one("#manifest-bytes-text", Static)
        f = self._current()
        if f is None:
            box.update("Select an image in the tree.")
            return
        m = f.manifest
        head = Text()
        head.append(f"{f.label}\n", style="bold")
        for name, value in (
            ("digest", m.digest),
            ("media type", m.media_type),
            ("size", f"{m.size} bytes"),
            ("origin", f.origin_label),
        ):
            head.append(f"{name:<11} ", style="dim")
            head.append(f"{value}\n")
        for r in self._relevant():
            if r.matched and r.expectation.digest == m.digest:
                head.append(f"{'expected':<11} ", style="dim")
                head.append(f"by {r.expectation.source}: {r.variant_description or r.explanation}\n", style="yellow")
        head.append("\nexact bytes served:\n", style="bold")
        exact = Text(m.data.decode("utf-8", "replace"), style="green", overflow="fold")
        pretty = Syntax(pretty_json(m.data), "json", theme="ansi_dark", background_color="default", word_wrap=True)
        box.update(Group(head, exact, Text("\npretty-printed:", style="bold"), pretty))

    def action_copy_digest(self) -> None:
        f = self._current()
        if f is not None:
            self.app.copy_to_clipboard(f.manifest.digest)
            self.notify(f"copied {f.manifest.digest}")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._copy(str(event.option.prompt))

    def _copy(self, cmd: str) -> None:
        self.app.copy_to_clipboard(cmd)
        self.notify(f"copied: {cmd}")
