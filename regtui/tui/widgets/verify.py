"""The Verify view: run the archive's verification in a thread worker and show each result.

Every result shows what was expected and what was found; mismatches are red with the likely cause.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, ProgressBar, Static

from regtui.oci.digests import short
from regtui.oci.model import Problem
from regtui.tui.facts import Selection, human_size
from regtui.tui.widgets.common import VimTable, row_index

if TYPE_CHECKING:
    from regtui.oci.verify import VerifyReport

ResultRow = tuple[str, str, str, str, str, str]  # (status, check, subject, expected, found, cause)


def result_rows(report: VerifyReport) -> list[ResultRow]:
    """(status, check, subject, expected, found, cause): every problem first, then every check that passed."""
    rows: list[ResultRow] = [(p.severity, p.check, p.subject, p.expected, p.found, p.cause) for p in report.problems]
    rows += [("ok", c.check, c.subject, "", c.detail, "") for c in report.checks if c.ok]
    return rows


INTRO = (
    "Verification reads every blob: digests, sizes, diff_ids, layer order, index descriptors. "
    "Press v to start; the server keeps serving meanwhile."
)
STYLE = {"error": "bold red", "warning": "yellow", "ok": "green"}


@runtime_checkable
class VerifyControl(Protocol):
    """What the view's buttons ask of the app (RegtuiApp's archive work)."""

    def action_verify(self) -> None: ...

    def cancel_verify(self) -> None: ...


class VerifyView(Vertical):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.selection: Selection | None = None
        self.rows: list[ResultRow] = []
        self.running = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="verify-bar"):
            yield Button("Verify archive (v)", id="verify-run", variant="primary")
            yield Button("Cancel", id="verify-cancel", disabled=True)
            yield ProgressBar(id="verify-progress", show_eta=False, total=None)
        yield Static(INTRO, id="verify-status")
        yield VimTable(id="verify-table")
        with VerticalScroll(id="verify-detail", classes="detail"):
            yield Static(id="verify-detail-text")

    def on_mount(self) -> None:
        t = self.query_one(VimTable)
        # Fixed widths keep every column on screen; the detail pane below shows each value in full.
        for label, key, width in (
            ("status", "status", 10),
            ("check", "check", 10),
            ("subject", "subject", 34),
            ("expected", "expected", 26),
            ("found", "found", None),
        ):
            t.add_column(label, key=key, width=width)

    def show(self, selection: Selection, report: VerifyReport | None = None) -> None:
        """The selected archive's last result (from this session or the cache), unless a run is going on."""
        changed = self.selection is None or selection.archive is not self.selection.archive
        self.selection = selection
        if self.running or not changed:
            return
        name = os.path.basename(selection.archive.path.rstrip("/"))
        if report is not None:
            self.finished(name, report, None, report.seconds)
        else:
            self.rows = []
            self.query_one(VimTable).clear()
            self.query_one("#verify-detail-text", Static).update("")
            self.query_one(ProgressBar).update(total=None, progress=0)
            self.query_one("#verify-status", Static).update(INTRO)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        app = self.app
        if not isinstance(app, VerifyControl):
            return
        if event.button.id == "verify-run":
            app.action_verify()
        elif event.button.id == "verify-cancel":
            app.cancel_verify()

    def started(self, name: str) -> None:
        self.running = True
        self.query_one("#verify-run", Button).disabled = True
        self.query_one("#verify-cancel", Button).disabled = False
        bar = self.query_one(ProgressBar)
        bar.update(total=None, progress=0)
        self.query_one("#verify-status", Static).update(Text(f"verifying {name}…", style="bold"))
        self.query_one(VimTable).clear()
        self.query_one("#verify-detail-text", Static).update("")

    def progress(self, done: int, total: int, label: str) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=max(total, 1), progress=done)
        self.query_one("#verify-status", Static).update(
            Text(f"verifying: {human_size(done)} of {human_size(total)}  {label}", no_wrap=True, overflow="ellipsis")
        )

    def finished(self, name: str, report: VerifyReport | None, error: str | None, elapsed: float) -> None:
        self.running = False
        self.query_one("#verify-run", Button).disabled = False
        self.query_one("#verify-cancel", Button).disabled = True
        status = self.query_one("#verify-status", Static)
        bar = self.query_one(ProgressBar)
        if error or report is None:
            status.update(Text(f"{name}: {error or 'verification did not finish'}", style="bold red"))
            return
        bar.update(total=bar.total or 1, progress=bar.total or 1)
        problems = list(report.problems)
        errors = [p for p in problems if p.severity == "error"]
        warnings = [p for p in problems if p.severity != "error"]
        self.rows = result_rows(report)
        checked = len(report.checks)
        if errors:
            line = Text(
                f"✗ {name}: {len(errors)} mismatch{'es' * (len(errors) != 1)}, {len(warnings)} "
                f"warning(s), {checked} checks in {elapsed:.1f} s",
                style="bold red",
            )
        else:
            line = Text(
                f"✓ {name}: all {checked} checks passed"
                + (f", {len(warnings)} warning(s)" if warnings else "")
                + f" in {elapsed:.1f} s",
                style="bold green",
            )
        if report.cached:
            line = Text.assemble(line, ("   (result of an earlier run on these same bytes; v verifies again)", "dim"))
        status.update(line)
        t = self.query_one(VimTable)
        t.clear()
        for i, (sev, check, subject, expected, found, _cause) in enumerate(self.rows):
            style = STYLE.get(sev, "")
            mark = {"error": "✗ mismatch", "warning": "! warning", "ok": "✓ ok"}.get(sev, sev)
            t.add_row(
                Text(mark, style=style),
                check,
                _short(subject),
                Text(_short(expected)),
                Text(_short(found), style=style if sev != "ok" else ""),
                key=str(i),
            )
        self._show_detail()

    def on_data_table_row_highlighted(self, event: VimTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def _show_detail(self) -> None:
        t = self.query_one(VimTable)
        box = self.query_one("#verify-detail-text", Static)
        if not t.row_count:
            return
        sev, check, subject, expected, found, cause = self.rows[row_index(t.cursor_row_key())]
        style = STYLE.get(sev, "")
        txt = Text()
        txt.append(f"{check}", style="bold")
        txt.append(f"  {subject}\n")
        txt.append("expected  ", style="dim")
        txt.append(f"{expected or '—'}\n")
        txt.append("found     ", style="dim")
        txt.append(f"{found or '—'}\n", style=style)
        if cause:
            txt.append("likely cause  ", style="dim")
            txt.append(cause, style=style)
        box.update(txt)


def _short(value: str) -> str:
    """Digests shortened inside table cells (the detail pane shows them in full)."""
    return " ".join(short(w, 16) if w.startswith("sha256:") and len(w) > 30 else w for w in str(value).split(" "))


def problems_by_blob(archive_path: str, report: VerifyReport) -> dict[tuple[str, str], list[Problem]]:
    """Problems keyed by (archive, digest) for the digests they name, so other views can mark them."""
    out: dict[tuple[str, str], list[Problem]] = {}
    for p in report.problems:
        if p.severity != "error":
            continue
        for word in f"{p.subject} {p.expected}".replace(",", " ").split():
            if word.startswith("sha256:") and len(word) == 71:
                out.setdefault((archive_path, word), []).append(p)
    return out
