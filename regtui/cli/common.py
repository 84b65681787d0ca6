"""What every command shares: the one `fail`, opening archives, and the `--expect` options with their output."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from regtui.oci.errors import ArchiveError

if TYPE_CHECKING:
    from regtui.oci.forensics import Expectation, ExpectResult
    from regtui.oci.model import Archive
    from regtui.remote import Credentials

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1  # the work was done and found a problem (or could not be done)
EXIT_USAGE = 2  # bad input: options, files, references


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One clear line on stderr and a non-zero exit; never a traceback."""
    click.echo(f"regtui: error: {message}", err=True)
    sys.exit(code)


def open_one(path: str) -> Archive:
    """open_archive, with a progress bar (bytes, speed) on stderr while a compressed Zarf package is unpacked
    into the cache the first time; raises ArchiveError."""
    from regtui.oci import open_archive
    from regtui.oci.zarf.sources import compressed_form

    if compressed_form(path) is None or not sys.stderr.isatty():
        return open_archive(path)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (
        TextColumn("[bold]unpack[/] {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(path, total=None)

        def progress(p: Any) -> None:  # regtui.oci.zarf.sources.UnpackProgress
            desc = f"{path} (waiting: another regtui is unpacking it)" if p.waiting else path
            bar.update(task, completed=p.read, total=p.total, description=desc)

        return open_archive(path, progress=progress)


def open_or_fail(paths: Iterable[str]) -> list[Archive]:
    archives = []
    for p in paths:
        try:
            archives.append(open_one(p))
        except ArchiveError as e:
            fail(e.line())
    return archives


def demo_paths(paths: Sequence[str]) -> list[str]:
    if paths:
        return list(paths)
    from regtui.oci.demo import demo_archive_path

    return [demo_archive_path()]


# -- --expect / --expect-file / --expect-manifest on tui, inspect, verify, serve and push ----------------------


def expect_options(f: F) -> F:
    """The three options, for any command that opens archives."""
    f = click.option(
        "--expect-manifest",
        "expect_manifest",
        multiple=True,
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="The upstream manifest (or index) bytes, to diff when nothing matches.",
    )(f)
    f = click.option(
        "--expect-file",
        "expect_file",
        multiple=True,
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="A list of image references, one per line (# comments allowed).",
    )(f)
    f = click.option(
        "--expect",
        "expect",
        multiple=True,
        metavar="IMAGE@DIGEST",
        help="A manifest digest clients will ask for; served if a serialization reproduces it.",
    )(f)
    return f


def load_expectations(
    expect: Sequence[str] = (), expect_file: Sequence[str] = (), expect_manifest: Sequence[str] = ()
) -> tuple[list[Expectation], list[str]]:
    """Expectations from the options; bad input exits 2 with one precise line."""
    from regtui.oci.forensics import ExpectError, parse_expectation, read_expect_file, read_manifest_file

    out: list[Expectation] = []
    notes: list[str] = []
    try:
        for text in expect:
            out.append(parse_expectation(text, "--expect"))
        for path in expect_file:
            got, more = read_expect_file(path)
            out.extend(got)
            notes.extend(more)
        for path in expect_manifest:
            out = read_manifest_file(out, path)
    except ExpectError as e:
        fail(str(e))
    return out, notes


def apply_cli_expectations(
    archives: Iterable[Archive],
    expect: Sequence[str] = (),
    expect_file: Sequence[str] = (),
    expect_manifest: Sequence[str] = (),
) -> list[ExpectResult]:
    """Parse the options and apply them to the opened archives (before anything serves or shows them)."""
    from regtui.oci.forensics import apply_to_archives

    exps, notes = load_expectations(expect, expect_file, expect_manifest)
    for n in notes:
        click.echo(f"regtui: note: {n}", err=True)
    if not exps:
        return []
    return apply_to_archives(list(archives), exps)


def render_results(results: list[ExpectResult], err: bool = False) -> None:
    if not results:
        return
    click.echo("", err=err)
    click.echo("Expected digests", err=err)
    for r in results:
        mark = {"matched-as-served": "✓", "matched-by-variant": "✓"}.get(r.status, "✗")
        click.echo(f"  {mark} {r.line()}", err=err)
        if r.diff is not None and not r.matched:
            for line in r.diff.render_text().splitlines():
                click.echo(f"      {line}", err=err)


def json_results(data: list[dict[str, Any]], archives: Sequence[Archive], results: list[ExpectResult]) -> None:
    """Add each archive's results to its inspect dict (unplaced ones go to the first)."""
    if not results:
        return
    for d in data:
        d.setdefault("expectations", [])
    for r in results:
        i = next((n for n, a in enumerate(archives) if a is r.archive), 0)
        data[i]["expectations"].append(r.to_dict())


def all_matched(results: list[ExpectResult]) -> bool:
    return all(r.matched for r in results)


def check_connection_options(ca: str | None, insecure: bool, username: str | None, password_stdin: bool) -> None:
    """The TLS and login options `push` and `watch` share: one set of rules, one wording."""
    if insecure and ca:
        fail("--insecure and --ca exclude each other (--ca verifies the server, --insecure does not)")
    if password_stdin and not username:
        fail("--password-stdin needs --username")
    if username and not password_stdin:
        fail("--username needs --password-stdin (the password is read from standard input)")
    if ca and not os.path.isfile(ca):
        fail(f"--ca {ca}: no such file")


def read_credentials(username: str | None) -> Credentials | None:
    """`--username` with the password from standard input (checked by `check_connection_options` first)."""
    if not username:
        return None
    from regtui.remote import Credentials

    password = sys.stdin.read().rstrip("\r\n")
    if not password:
        fail("--password-stdin: standard input was empty")
    return Credentials(username, password, source="--username/--password-stdin")
