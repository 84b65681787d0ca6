"""`regtui inspect`: format, images, tags, platforms, config, layers and manifests, for people or as JSON."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
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


@click.command("inspect")
@click.argument("archives", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@expect_options
def command(
    archives: tuple[str, ...],
    as_json: bool,
    expect: tuple[str, ...],
    expect_file: tuple[str, ...],
    expect_manifest: tuple[str, ...],
) -> None:
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
    for a in archives_:
        render_inspect(a)
    render_results(results)
    sys.exit(code)


def _image_block(console: Console, img: Image, title: str) -> None:
    """One image, printed as one Text: a print per line, and a rich Table per image, were most of a
    1000-image inspect's time."""
    cfg = config_summary(img)
    out = Text.assemble(
        (title, "bold cyan"), "  ", (str(img.platform or "?"), "magenta"), f"  created {cfg['created'] or '—'}"
    )
    lines = [f"  {key}: {cfg[key]}" for key in ("entrypoint", "cmd", "working_dir", "user") if cfg[key]]
    if cfg["env"]:
        lines.append("  env: " + ", ".join(cfg["env"]))
    if cfg["labels"]:
        lines.append("  labels: " + ", ".join(f"{k}={v}" for k, v in cfg["labels"].items()))
    if cfg["exposed_ports"]:
        lines.append("  ports: " + ", ".join(cfg["exposed_ports"]))
    lines.append(f"  config {cfg['digest']} ({cfg['size']} B, {cfg['media_type']})")
    for line in lines:
        out.append("\n" + line)  # data, never markup
    out.append("\n")
    out.append_text(_layers_text(img, 1 << 30 if console.soft_wrap else console.width))  # piped: whole lines
    for i, m in enumerate(img.manifests):
        mark = "default" if i == 0 else "on request"
        out.append(f"\n  manifest {m.digest}  {m.media_type}  {m.size} B  ({m.origin}, {mark})")
    console.print(out)


LAYER_COLUMNS = ("#", "digest", "media type", "size", "diff_id", "created_by")


def _layers_text(img: Image, width: int) -> Text:
    """The layers aligned in columns, created_by folded under its own column to fit `width`."""
    cut = short if width < 1 << 30 else str  # piped: whole digests, the thing one greps for
    rows = [
        (
            str(i),
            cut(ly.digest),
            short_name(ly.descriptor.media_type),
            human_size(ly.descriptor.size),
            cut(ly.diff_id) if ly.diff_id else "—",
            (ly.history.created_by if ly.history else "") or "",
        )
        for i, ly in enumerate(img.layers, 1)
    ]  # from 1, as the TUI's Layers view numbers them
    widths = [max([len(h), *(len(r[c]) for r in rows)]) for c, h in enumerate(LAYER_COLUMNS[:5])]  # no layers: header
    indent = sum(widths) + 2 * len(widths)
    room = max(12, width - indent)
    t = Text(no_wrap=True, overflow="ignore")
    t.append("  ".join(h.ljust(w) for h, w in zip(LAYER_COLUMNS, widths, strict=False)) + "  created_by", style="bold")
    for r in rows:
        t.append("\n" + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  ")
        created = r[5].replace("\n", " ")
        t.append(created[:room])
        for pos in range(room, len(created), room):
            t.append("\n" + " " * indent + created[pos : pos + room])
    return t


def render_inspect(archive: Archive, console: Console | None = None) -> None:
    console = console or Console(soft_wrap=not sys.stdout.isatty())
    console.rule(Text(archive.path, style="bold"))
    if archive.package is not None:  # a Zarf package: its summary first
        from regtui.cli.packageview import render_package

        render_package(archive.package, console)
    size = human_size(archive.total_size())
    console.print(Text(f"format: {archive.format_name}   blobs: {len(archive.blobs)} ({size})"))
    for root in archive.roots:
        name = root.repository + (":" + ",".join(root.tags) if root.tags else "")
        if isinstance(root, ImageIndex):
            console.print(
                Text.assemble(
                    ("index ", "bold"), (name, "bold cyan"), f"  {root.manifest.digest}  {root.manifest.media_type}"
                )
            )
            for child in root.images():
                _image_block(console, child, f"  └ {child.manifest.digest}")
        else:
            _image_block(console, root, name)
    for p in archive.warnings:
        console.print(Text.assemble(("warning: ", "yellow"), p.line()))
