"""`regtui push ARCHIVE REGISTRY[/PREFIX]`: copy every image of an archive into a real registry."""

from __future__ import annotations

import asyncio
import os
import re

import click

from regtui.cli.common import (
    EXIT_FAILED,
    all_matched,
    apply_cli_expectations,
    check_connection_options,
    expect_options,
    fail,
    open_or_fail,
    read_credentials,
    render_results,
)
from regtui.push.errors import PushError


def _parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([kmg]?)i?b?\s*", text.lower())
    if not m or int(m.group(1)) == 0:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 16M, 512K)")
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


@click.command("push")
@click.argument("archive", type=click.Path())
@click.argument("registry")
@click.option(
    "--tag-map",
    "tag_map",
    multiple=True,
    metavar="OLD=NEW",
    help="Push OLD (repo:tag, or repo for all its tags) as NEW; repeatable.",
)
@click.option("--insecure", is_flag=True, help="Skip TLS verification (and fall back to plain HTTP).")
@click.option(
    "--ca", type=click.Path(dir_okay=False), help="PEM file of the CA that signed the registry's certificate."
)
@click.option("--username", "-u", help="User name (the password comes from --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password (or token) from standard input.")
@click.option("--dry-run", is_flag=True, help="List what would be uploaded and what the registry already has.")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 32), default=4, show_default=True, help="Blobs uploaded in parallel."
)
@click.option(
    "--chunk-size",
    default="16M",
    show_default=True,
    metavar="SIZE",
    help="Blobs larger than this are uploaded in chunks of this size.",
)
@click.option(
    "--retries",
    type=click.IntRange(1, 20),
    default=5,
    show_default=True,
    help="Attempts per request on broken connections, 429 and 5xx (with backoff).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display; only errors and the summary line.")
@expect_options
def command(
    archive,
    registry,
    tag_map,
    insecure,
    ca,
    username,
    password_stdin,
    dry_run,
    jobs,
    chunk_size,
    retries,
    quiet,
    expect,
    expect_file,
    expect_manifest,
) -> None:
    """Copy every image of ARCHIVE into REGISTRY[/PREFIX] through the OCI distribution push API.

    Images keep their names (without docker.io/ and library/) under PREFIX and their manifest digests.
    Loopback registries are spoken to over plain HTTP, others over HTTPS. Credentials come from
    --username/--password-stdin or from docker's config.json. Running it again after an interruption
    sends only what the registry is missing. With --expect, the manifest bytes digest forensics recovers
    are the ones pushed (nothing is pushed when an expected digest cannot be reproduced).
    """
    check_connection_options(ca, insecure, username, password_stdin)
    size = _parse_size(chunk_size)
    credentials = read_credentials(username)
    from regtui.push.names import parse_tag_map, parse_target

    try:  # bad arguments and an archive that cannot be opened exit 2, like every command
        target, rules = parse_target(registry), parse_tag_map(tag_map)
    except PushError as e:
        fail(e.line())
    [opened] = open_or_fail([archive])
    from regtui.push.plan import build_plan

    try:
        _apply_expectations(opened, expect, expect_file, expect_manifest)  # an expected digest not served: 1
    except PushError as e:
        fail(e.line(), EXIT_FAILED)
    try:
        plan = build_plan(opened, target, rules)  # e.g. a --tag-map naming what the archive lacks: 2
    except PushError as e:
        fail(e.line())
    try:
        summary = asyncio.run(_main(plan, target, insecure, ca, credentials, dry_run, jobs, size, retries, quiet))
    except PushError as e:
        fail(e.line(), EXIT_FAILED)
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to finish (what completed is not sent again)", 130)
    except Exception as e:
        if os.environ.get("REGTUI_DEBUG"):
            raise
        fail(f"push failed: {e.__class__.__name__}: {e} (set REGTUI_DEBUG=1 for details)", EXIT_FAILED)
    click.echo(summary.line())


async def _main(plan, target, insecure, ca, credentials, dry_run, jobs, chunk_size, retries, quiet):
    from rich.console import Console

    from regtui.push.client import PushClient
    from regtui.push.display import LineView, ProgressView
    from regtui.push.run import run_push

    out, err = Console(), Console(stderr=True)
    if dry_run or quiet or not out.is_terminal:
        view = LineView(out, err, dry_run=dry_run, quiet=quiet)
    else:
        view = ProgressView(out, err, plan.total_bytes())
    async with PushClient(
        target, ca=ca, insecure=insecure, credentials=credentials, chunk_size=chunk_size, retries=retries, on_event=view
    ) as client:
        with view:
            return await run_push(plan, client, jobs=jobs, dry_run=dry_run, on_event=view)


def _apply_expectations(archive, expect, expect_file, expect_manifest) -> None:
    """Digest forensics first: a recovered serialization becomes each image's default form, the one pushed."""
    if not (expect or expect_file or expect_manifest):
        return
    results = apply_cli_expectations([archive], expect, expect_file, expect_manifest)
    render_results(results, err=True)
    if not all_matched(results):
        missed = next(r.expectation for r in results if not r.matched)
        raise PushError(
            f"expected digest {missed.digest} ({missed.source}) is not reproduced by the archive; nothing was pushed",
            hint="see the explanation above; drop that --expect to push what the archive holds",
        )
