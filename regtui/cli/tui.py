"""`regtui [tui] [ARCHIVE...]`: the interactive inspector (the default command)."""

from __future__ import annotations

import click

from regtui.cli.common import demo_paths, expect_options, load_expectations


@click.command("tui")
@click.argument("archives", nargs=-1, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the registry listens on (s starts it).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port it listens on.")
@expect_options
def command(
    archives: tuple[str, ...],
    host: str,
    port: int,
    expect: tuple[str, ...],
    expect_file: tuple[str, ...],
    expect_manifest: tuple[str, ...],
) -> None:
    """Open the interactive inspector on ARCHIVES (the bundled demo image when none is given)."""
    paths = demo_paths(archives)
    expectations, _ = load_expectations(expect, expect_file, expect_manifest)
    from regtui.tui.app import run_tui  # Textual loads only for this command

    run_tui(paths, host=host, port=port, expectations=expectations or None)
