"""Render push events in a terminal: rich progress bars on a TTY, one line per item otherwise."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from regtui.oci.digests import short
from regtui.push.events import BlobDone, BlobProgress, BlobStarted, ManifestDone, Note, Retry


class LineView:
    """Plain lines (pipes, logs, --dry-run): one per blob and manifest; retries and notes on stderr."""

    def __init__(self, console: Console, err: Console, *, dry_run: bool, quiet: bool):
        self.console, self.err, self.dry_run, self.quiet = console, err, dry_run, quiet

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __call__(self, e: object) -> None:
        if isinstance(e, Note):
            self.err.print(f"note: {e.text}", highlight=False, soft_wrap=True)
        elif isinstance(e, Retry):
            self.err.print(
                f"retry {e.attempt}: {e.what} ({e.reason}); again in {e.delay:.1f}s", highlight=False, soft_wrap=True
            )
        elif self.quiet and not self.dry_run:
            return
        elif isinstance(e, BlobDone | ManifestDone):
            self.console.print(e.line(self.dry_run), highlight=False, soft_wrap=True)


class ProgressView(LineView):
    """A bar per blob being uploaded and one overall bar; finished items scroll above the bars."""

    def __init__(self, console: Console, err: Console, total: int):
        super().__init__(console, err, dry_run=False, quiet=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.overall = self.progress.add_task("total", total=max(1, total))
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.done: dict[tuple[str, str], int] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def _advance(self, key: tuple[str, str], done: int) -> None:
        self.progress.advance(self.overall, done - self.done.get(key, 0))
        self.done[key] = done

    def __call__(self, e: object) -> None:
        if isinstance(e, BlobStarted):
            key = (e.repo, e.digest)
            self.tasks[key] = self.progress.add_task(f"{short(e.digest)}", total=max(1, e.size))
        elif isinstance(e, BlobProgress):
            key = (e.repo, e.digest)
            if key in self.tasks:
                self.progress.update(self.tasks[key], completed=e.done)
            self._advance(key, e.done)
        elif isinstance(e, BlobDone):
            key = (e.repo, e.digest)
            self._advance(key, e.size)
            if key in self.tasks:
                self.progress.remove_task(self.tasks.pop(key))
                self.progress.refresh()
            self.progress.console.print(e.line(), highlight=False, soft_wrap=True)
        elif isinstance(e, ManifestDone):
            self.progress.console.print(e.line(), highlight=False, soft_wrap=True)
        else:
            super().__call__(e)
