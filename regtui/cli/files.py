"""`regtui files`: what an image's layers put into it, without extracting: a tree of the final image or of the
image as of layer N with its changes marked, a PATH subtree or a glob's matches, per-layer changes, which layers
touch a path (`--find`), and dive's waste numbers."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from regtui.cli.common import fail
from regtui.cli.contents import (
    MARK_LETTER,
    MARK_STYLE,
    image_name,
    load_files,
    mode_string,
    open_one,
    row_dict,
    row_text,
    select_image,
    summary_lines,
)
from regtui.oci.contents import ImageFiles
from regtui.oci.contents.find import find, is_glob
from regtui.oci.contents.merge import MARK_NAMES, path_id
from regtui.oci.contents.view import NO_PARENT, FileView
from regtui.oci.contents.waste import Waste, analyze
from regtui.oci.units import human_size


@click.command("files")
@click.argument("archive", type=click.Path())
@click.argument("pattern", required=False)
@click.option("--image", "image_ref", metavar="REF", help="Which image: repo:tag, tag, digest, os/arch or #index.")
@click.option(
    "--layer",
    type=int,
    metavar="N",
    help="The image as of layer N (1 = base, as Layers numbers them), its changes marked.",
)
@click.option("--changes", is_flag=True, help="Only what changed: in layer N, or in every layer as a list.")
@click.option("--find", "find_path", metavar="PATH", help="Which layers touch PATH (or a glob like '*.pyc').")
@click.option("--by-size", is_flag=True, help="Largest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(
    archive: str,
    pattern: str | None,
    image_ref: str | None,
    layer: int | None,
    changes: bool,
    find_path: str | None,
    by_size: bool,
    as_json: bool,
) -> None:
    """What the image's layers put into it, without extracting: a tree of the final image (or of layer N), a
    PATH subtree or a glob's matches, per-layer changes, and dive's waste numbers."""
    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True)
    arc = open_one(archive)
    image = select_image(arc, image_ref)
    contents = load_files(image, err)
    if layer is not None and not 1 <= layer <= len(contents.layers):
        fail(f"no layer {layer}: the image has layers 1..{len(contents.layers)}")
    index = None if layer is None else layer - 1
    waste = analyze(contents)
    if find_path is not None:
        return _find(contents, find_path, out, as_json)
    if changes and layer is None:
        return _changes(contents, out, as_json)
    view = FileView(contents, index, changes_only=changes)
    if pattern and is_glob(pattern):
        matches, truncated = find(contents, pattern)
        rows = [view.row(path_id(contents, f.path)) for f in matches if view.mask[path_id(contents, f.path)]]
        walk: list[tuple[int | None, int]] = [(None, r.id) for r in rows]
        if truncated:
            err.print(f"regtui: only the first {len(matches)} matches are listed")
    else:
        top = NO_PARENT
        if pattern:
            top = path_id(contents, pattern)
            if top < 0 or not view.mask[top]:
                fail(
                    f"{pattern} is not in the image"
                    + (f" as of layer {layer}" if layer is not None else "")
                    + "; try --find to see which layers touch it"
                )
        walk = [(0, top)] if top != NO_PARENT else []
        walk += [(d + (top != NO_PARENT), k) for d, k in view.walk(top, by_size=by_size)]
    if as_json:
        data = {
            "image": image_name(image),
            "layer": layer,
            "complete": contents.complete,
            **_waste_dict(waste),
            "entries": [row_dict(view.row(k)) for _, k in walk],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for line in summary_lines(contents, waste):
        err.print(Text(line))
    for depth, k in walk:
        out.print(row_text(view.row(k), depth))


def _waste_dict(w: Waste) -> dict[str, Any]:
    return {
        "efficiency": w.efficiency,
        "wasted_bytes": w.wasted_bytes,
        "user_wasted_percent": w.user_wasted_percent,
        "size_bytes": w.size_bytes,
        "user_size_bytes": w.user_size_bytes,
        "offenders": [{"path": "/" + o.path, "count": o.count, "bytes": o.bytes} for o in w.top(20)],
    }


def _find(contents: ImageFiles, pattern: str, out: Console, as_json: bool) -> None:
    matches, truncated = find(contents, pattern)
    if as_json:
        data = [
            {
                "path": "/" + f.path,
                "in_image": f.in_image,
                "versions": [
                    {
                        "layer": v.layer + 1,
                        "mark": v.mark,
                        "kind": v.kind,
                        "size": v.size,
                        "mode": oct(v.mode),
                        "uid": v.uid,
                        "gid": v.gid,
                        "mtime": v.mtime,
                        "link": v.link,
                    }
                    for v in f.versions
                ],
            }
            for f in matches
        ]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if not matches:
        fail(f"no layer touches {pattern}", 1)
    for f in matches:
        out.print(Text.assemble(("/" + f.path, "bold"), "" if f.in_image else (" (not in the final image)", "red")))
        for v in f.versions:
            out.print(
                Text.assemble(
                    f"  layer {v.layer + 1:>2}  ",
                    (f"{v.mark:<9}", MARK_STYLE.get(v.mark, "")),
                    f" {mode_string(v.kind, v.mode)} {v.uid}:{v.gid} {human_size(v.size):>10} "
                    f"{_time(v.mtime)}" + (f" → {v.link}" if v.link else ""),
                )
            )
    if truncated:
        out.print(f"(only the first {len(matches)} matches)")


def _time(mtime: int) -> str:
    import datetime

    try:
        return datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(mtime)


def _changes(contents: ImageFiles, out: Console, as_json: bool) -> None:
    data: list[dict[str, Any]] = []
    for i, idx in enumerate(contents.layers):
        items = []
        for j, k in enumerate(contents.ids[i]):
            mark = MARK_NAMES[contents.marks[i][j]]
            if mark in ("added", "modified", "removed"):
                items.append(
                    {
                        "path": "/" + (contents.paths[k] if k < len(contents.paths) else ""),
                        "mark": mark,
                        "size": idx.size[j],
                    }
                )
        data.append({"layer": i + 1, "digest": idx.digest, "counts": contents.counts(i), "changes": items})
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for layer in data:
        c = layer["counts"]
        out.print(
            Text(
                f"layer {layer['layer']} {layer['digest'][:19]}: {c['added']} added, {c['modified']} "
                f"modified, {c['removed']} removed",
                style="bold",
            )
        )
        for item in layer["changes"]:
            out.print(Text(f"  {MARK_LETTER[item['mark']]} {item['path']}", style=MARK_STYLE[item["mark"]]))
