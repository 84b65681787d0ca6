"""`regtui inspect`: format, images, tags, platforms, config, layers and manifests, for people or as JSON."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from regtui.cli.common import (
    EXIT_FAILED,
    all_matched,
    apply_cli_expectations,
    demo_paths,
    expect_options,
    json_results,
    open_or_fail,
    render_results,
)
from regtui.oci.digests import short
from regtui.oci.inspect import config_summary, inspect_dict
from regtui.oci.mediatypes import short_name
from regtui.oci.model import Archive, Image, ImageIndex
from regtui.oci.units import human_size

PIPED_WIDTH = 4096  # piped output is not wrapped: each layer stays on one line, for grep and awk


@click.command("inspect")
@click.argument("archives", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@expect_options
def command(archives: tuple[str, ...], as_json: bool, expect: tuple[str, ...], expect_file: tuple[str, ...],
            expect_manifest: tuple[str, ...]) -> None:
    """Show format, images, tags, platforms, config, layers and manifests of ARCHIVES.

    Exit 1 when an --expect digest cannot be served, 2 when an archive cannot be opened.
    """
    archives_ = open_or_fail(demo_paths(archives))
    results = apply_cli_expectations(archives_, expect, expect_file, expect_manifest)
    code = 0 if all_matched(results) else EXIT_FAILED
    if as_json:
        data = [inspect_dict(a) for a in archives_]
        json_results(data, archives_, results)
        click.echo(json.dumps(data if len(data) > 1 else data[0], indent=2))
        sys.exit(code)
    piped = not sys.stdout.isatty()
    for a in archives_:
        render_inspect(a, Console(width=PIPED_WIDTH, soft_wrap=True) if piped else None, piped=piped)
    render_results(results)
    sys.exit(code)


def _image_block(console: Console, img: Image, title: str, piped: bool = False) -> None:
    cfg = config_summary(img)
    console.print(Text.assemble((title, "bold cyan"), "  ", (str(img.platform or "?"), "magenta"),
                                f"  created {cfg['created'] or '—'}"))
    for key in ("entrypoint", "cmd", "working_dir", "user"):
        if cfg[key]:
            console.print(Text(f"  {key}: {cfg[key]}"))
    if cfg["env"]:
        console.print(Text("  env: " + ", ".join(cfg["env"])))
    if cfg["labels"]:
        console.print(Text("  labels: " + ", ".join(f"{k}={v}" for k, v in cfg["labels"].items())))
    if cfg["exposed_ports"]:
        console.print(Text("  ports: " + ", ".join(cfg["exposed_ports"])))
    console.print(Text(f"  config {cfg['digest']} ({cfg['size']} B, {cfg['media_type']})"))
    t = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("#", "digest", "media type", "size", "diff_id", "created_by"):
        t.add_column(col, overflow="fold" if col == "created_by" else "ellipsis",
                     no_wrap=piped or col != "created_by")
    for i, l in enumerate(img.layers, 1):  # numbered from 1, as the TUI's Layers view and `verify` say them
        cut = (lambda d: d) if piped else short  # whole digests when piped: they are what one greps for
        cells = (str(i), cut(l.digest), short_name(l.descriptor.media_type), human_size(l.descriptor.size),
                 cut(l.diff_id) if l.diff_id else "—", (l.history.created_by if l.history else "") or "")
        t.add_row(*(Text(c) for c in cells))  # data, never markup
    console.print(t)
    for i, m in enumerate(img.manifests):
        mark = "default" if i == 0 else "on request"
        console.print(Text(f"  manifest {m.digest}  {m.media_type}  {m.size} B  ({m.origin}, {mark})"))


def render_inspect(archive: Archive, console: Console | None = None, piped: bool = False) -> None:
    console = console or Console()
    if piped:
        console.print(Text(f"== {archive.path}", style="bold"))
    else:
        console.rule(Text(archive.path, style="bold"))
    size = human_size(archive.total_size())
    console.print(Text(f"format: {archive.format_name}   blobs: {len(archive.blobs)} ({size})"))
    for root in archive.roots:
        name = root.repository + (":" + ",".join(root.tags) if root.tags else "")
        if isinstance(root, ImageIndex):
            console.print(Text.assemble(("index ", "bold"), (name, "bold cyan"),
                                        f"  {root.manifest.digest}  {root.manifest.media_type}"))
            for child in root.images():
                _image_block(console, child, f"  └ {child.manifest.digest}", piped)
        else:
            _image_block(console, root, name, piped)
    for p in archive.warnings:
        console.print(Text.assemble(("warning: ", "yellow"), p.line()))
