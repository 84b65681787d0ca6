"""`regtui verify`: run verification with a progress bar, print each problem plainly, cache the result."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.text import Text

from regtui.cli.common import all_matched, apply_cli_expectations, expect_options, open_or_fail, render_results
from regtui.cli.contents import check_thresholds, ci_options
from regtui.oci.cache import load_report, save_report
from regtui.oci.hashing import Cancelled
from regtui.oci.model import Archive
from regtui.oci.units import human_size
from regtui.oci.verify import VerifyReport, verify_archive

PROGRESS_FROM = 32 << 20  # smaller archives verify faster than a bar can draw


@click.command("verify")
@click.argument("archives", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-cache", is_flag=True, help="Verify again even if a cached result exists.")
@expect_options
@ci_options
def command(
    archives: tuple[str, ...],
    as_json: bool,
    no_cache: bool,
    expect: tuple[str, ...],
    expect_file: tuple[str, ...],
    expect_manifest: tuple[str, ...],
    **thresholds: Any,
) -> None:
    """Check every digest, size and diff_id of ARCHIVES; exit 0 only when everything holds.

    With dive's CI thresholds, also check each image's efficiency and wasted bytes, listing the offenders."""
    archives_ = open_or_fail(archives)
    results = apply_cli_expectations(archives_, expect, expect_file, expect_manifest)
    code = run_verify(archives_, as_json=as_json, use_cache=not no_cache)
    render_results(results, err=as_json)  # stdout stays one JSON document
    lean = check_thresholds(archives_, console=Console(stderr=as_json, soft_wrap=True), **thresholds)
    sys.exit(code or (0 if all_matched(results) and lean else 1))


def verify_with_progress(archive: Archive, console: Console) -> VerifyReport:
    if not console.is_terminal or archive.total_size() < PROGRESS_FROM:
        return verify_archive(archive)
    cancel = threading.Event()
    columns = (
        TextColumn("[bold]verify[/] {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(archive.path, total=archive.total_size())

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total)

        try:
            return verify_archive(archive, progress=progress, cancel=cancel)
        except KeyboardInterrupt:
            cancel.set()
            raise


def report_dict(report: VerifyReport) -> dict[str, Any]:
    return {
        "path": report.path,
        "ok": report.ok,
        "cached": report.cached,
        "bytes_hashed": report.bytes_hashed,
        "seconds": round(report.seconds, 3),
        "problems": [dataclasses.asdict(p) for p in report.problems],
        "checks": [dataclasses.asdict(c) for c in report.checks],
    }


def print_report(report: VerifyReport, console: Console) -> None:
    errors = report.errors()
    warnings = [p for p in report.problems if p.severity != "error"]
    head = f"{report.path}: "
    if not errors:
        mib_s = report.bytes_hashed / report.seconds / (1 << 20) if report.seconds else 0
        speed = "cached result" if report.cached else f"{report.seconds:.2f} s, {mib_s:.0f} MiB/s"
        console.print(
            Text.assemble(
                ("✔ ", "green"),
                head,
                f"{len(report.checks)} checks passed, {human_size(report.bytes_hashed)} hashed ({speed})",
            )
        )
    else:
        console.print(
            Text.assemble(
                ("✘ ", "bold red"), head, (f"{len(errors)} problem(s)", "red"), f", {len(report.checks)} checks"
            )
        )
    package = _package_line(report)
    if package:
        console.print(Text(package))
    for p in errors + warnings:
        style = "red" if p.severity == "error" else "yellow"
        console.print(Text.assemble(("  " + p.severity + ": ", style), (p.check, "bold"), " ", p.subject))
        console.print(Text(f"    expected: {p.expected}"))
        console.print(Text(f"    found:    {p.found}"))
        console.print(Text(f"    cause:    {p.cause}"))


def _package_line(report: VerifyReport) -> str:
    """For a Zarf package: its checksums, aggregate and signature at a glance."""
    sums = [c for c in report.checks if c.check == "checksums"]
    if not any(c.check in ("aggregate", "signature") for c in report.checks):
        return ""
    agg = next((c for c in report.checks if c.check == "aggregate"), None)
    sig = "; ".join(c.detail for c in report.checks if c.check == "signature")
    aggregate = (
        ("aggregate ok" if agg.ok else "no aggregate recorded" if agg.detail == "none" else "aggregate FAILED")
        if agg is not None
        else "no aggregate"
    )
    return f"  Zarf package: checksums.txt {sum(c.ok for c in sums)}/{len(sums)} files ok, {aggregate}, {sig}"


def run_verify(archives: list[Archive], *, as_json: bool, use_cache: bool = True) -> int:
    out = Console(soft_wrap=not sys.stdout.isatty())  # logs and pipes get whole lines
    err = Console(stderr=True)
    reports = []
    try:
        for archive in archives:
            report = load_report(archive) if use_cache else None
            if report is None:
                report = verify_with_progress(archive, err)
                save_report(archive, report)
            reports.append(report)
            if not as_json:
                print_report(report, out)
    except (KeyboardInterrupt, Cancelled):
        err.print("regtui: verification interrupted")
        return 130
    except OSError as e:
        err.print(Text(f"regtui: error: cannot read {e.filename or 'the archive'}: {e.strerror}"))
        return 2
    if as_json:
        data = [report_dict(r) for r in reports]
        sys.stdout.write(json.dumps(data if len(data) > 1 else data[0], indent=2) + "\n")
    return 0 if all(r.ok for r in reports) else 1
