"""`regtui files` and `regtui cat`: what every layer puts into an image, and one file's content; plus dive's CI
thresholds for `regtui verify` (`--lowest-efficiency`, `--highest-wasted-bytes`, `--highest-user-wasted-percent`).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)
from rich.syntax import Syntax
from rich.text import Text

from regtui.oci.contents import ImageFiles, load_image_files
from regtui.oci.contents.find import find, is_glob
from regtui.oci.contents.merge import MARK_NAMES, path_id
from regtui.oci.contents.read import ContentError, iter_entry, locate, read_file
from regtui.oci.contents.tarscan import FILE
from regtui.oci.contents.view import NO_PARENT, FileView, Row
from regtui.oci.contents.waste import Waste, analyze
from regtui.oci.errors import ArchiveError
from regtui.oci.hashing import Cancelled
from regtui.oci.inspect import human_size
from regtui.oci.model import Archive, Image

PROGRESS_FROM = 32 << 20
MARK_STYLE = {"added": "green", "modified": "yellow", "removed": "red", "unchanged": "", "no-op": "dim"}
MARK_LETTER = {"added": "A", "modified": "M", "removed": "D", "unchanged": " ", "no-op": "-"}
CAT_HEAD = 1 << 20  # text shown highlighted; the sha256 still covers every byte
HEX_HEAD = 512


def fail(message: str, code: int = 2) -> None:
    click.echo(f"regtui: error: {message}", err=True)
    sys.exit(code)


def open_one(path: str) -> Archive:
    from regtui.oci import open_archive

    try:
        return open_archive(path)
    except ArchiveError as e:
        fail(e.line())
        raise  # unreachable


def split_archive_ref(text: str) -> tuple[str, str | None]:
    """`ARCHIVE[:IMAGE]`: the longest prefix that exists on disk is the archive (paths and refs both have ':')."""
    if os.path.exists(text):
        return text, None
    for m in reversed(list(re.finditer(":", text))):
        if os.path.exists(text[:m.start()]):
            return text[:m.start()], text[m.start() + 1:] or None
    return text, None


def select_image(archive: Archive, ref: str | None) -> Image:
    images = archive.images()
    if not images:
        fail(f"{archive.path}: holds no image")
    if ref is None:
        if len(images) > 1:
            fail(f"{archive.path} holds {len(images)} images; choose one with --image ({_names(images)})")
        return images[0]
    if ref.isdigit() and int(ref) < len(images):
        return images[int(ref)]
    for img in images:
        names = {f"{img.repository}:{t}" for t in img.tags} | set(img.tags)
        if ref in names or img.manifest.digest.startswith(ref) or (img.platform and str(img.platform) == ref):
            return img
    fail(f"{archive.path}: no image {ref!r}; it holds {_names(images)}")
    raise AssertionError  # unreachable


def _names(images: list[Image]) -> str:
    out = []
    for n, img in enumerate(images):
        name = f"{img.repository}:{img.tags[0]}" if img.tags else img.manifest.digest[:19]
        out.append(name + (f" {img.platform}" if img.platform else "") + f" (#{n})")
    return ", ".join(out[:8]) + (" ..." if len(out) > 8 else "")


def load_files(image: Image, err: Console) -> ImageFiles:
    """Index the image's layers (a progress bar on a terminal for large images); Ctrl-C stops cleanly."""
    total = sum(l.location.size for l in image.layers if l.location)
    cancel = threading.Event()
    try:
        if not err.is_terminal or total < PROGRESS_FROM:
            return load_image_files(image, cancel=cancel)
        columns = (TextColumn("[bold]index[/] {task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("layers", total=total)

            def progress(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, description=escape(what))

            return load_image_files(image, progress=progress, cancel=cancel)
    except (KeyboardInterrupt, Cancelled):
        cancel.set()
        fail("indexing interrupted", 130)
        raise


def mode_string(kind: str, mode: int) -> str:
    letter = {"dir": "d", "symlink": "l", "char": "c", "block": "b", "fifo": "p"}.get(kind, "-")
    return letter + stat.filemode(mode)[1:]


def summary_lines(files: ImageFiles, waste: Waste) -> list[str]:
    out = [(f"efficiency: {waste.efficiency * 100:.4f} %   wasted: {waste.wasted_bytes} bytes "
            f"({human_size(waste.wasted_bytes)})   user wasted: {waste.user_wasted_percent * 100:.4f} %")]
    for idx in files.layers:
        if not idx.complete or idx.problem_count:
            state = "incomplete" if not idx.complete else "note"
            for p in idx.problems:
                out.append(f"{state}: layer {idx.digest[:19]}: {p}")
            if idx.problem_count > len(idx.problems):
                out.append(f"{state}: layer {idx.digest[:19]}: and {idx.problem_count - len(idx.problems)} more")
    return out


def row_dict(row: Row) -> dict[str, Any]:
    return {"path": "/" + row.path, "kind": row.kind, "mode": oct(row.mode), "uid": row.uid, "gid": row.gid,
            "size": row.size, "mtime": row.mtime, "link": row.link, "mark": row.mark, "layer": row.layer}


def row_text(row: Row, depth: int | None) -> Text:
    style = MARK_STYLE.get(row.mark, "")
    name = row.name if depth is not None else "/" + row.path
    if row.link:
        name += f" → {row.link}"
    meta = f"{MARK_LETTER.get(row.mark, ' ')} {mode_string(row.kind, row.mode)} {row.uid:>5}:{row.gid:<5} " \
           f"{human_size(row.size):>10}  "
    indent = "    " * depth if depth else ""
    return Text.assemble((meta, style), indent, (name + ("/" if row.kind == "dir" else ""), style))


@click.command()
@click.argument("archive", type=click.Path())
@click.argument("pattern", required=False)
@click.option("--image", "image_ref", metavar="REF", help="Which image: repo:tag, tag, digest, os/arch or #index.")
@click.option("--layer", type=int, metavar="N", help="The image as of layer N (0 = base), its changes marked.")
@click.option("--changes", is_flag=True, help="Only what changed: in layer N, or in every layer as a list.")
@click.option("--find", "find_path", metavar="PATH", help="Which layers touch PATH (or a glob like '*.pyc').")
@click.option("--by-size", is_flag=True, help="Largest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def files(archive: str, pattern: str | None, image_ref: str | None, layer: int | None, changes: bool,
          find_path: str | None, by_size: bool, as_json: bool) -> None:
    """What the image's layers put into it, without extracting: a tree of the final image (or of layer N), a
    PATH subtree or a glob's matches, per-layer changes, and dive's waste numbers."""
    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True)
    arc = open_one(archive)
    image = select_image(arc, image_ref)
    contents = load_files(image, err)
    if layer is not None and not 0 <= layer < len(contents.layers):
        fail(f"no layer {layer}: the image has layers 0..{len(contents.layers) - 1}")
    waste = analyze(contents)
    if find_path is not None:
        return _find(contents, find_path, out, as_json)
    if changes and layer is None:
        return _changes(contents, out, as_json)
    view = FileView(contents, layer, changes_only=changes)
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
                fail(f"{pattern} is not in the image" + (f" as of layer {layer}" if layer is not None else "")
                     + "; try --find to see which layers touch it")
        walk = ([(0, top)] if top != NO_PARENT else []) + [(d + (top != NO_PARENT), k)
                                                            for d, k in view.walk(top, by_size=by_size)]
    if as_json:
        data = {"image": _image_name(image), "layer": layer, "complete": contents.complete,
                **_waste_dict(waste), "entries": [row_dict(view.row(k)) for _, k in walk]}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for line in summary_lines(contents, waste):
        err.print(Text(line))
    for depth, k in walk:
        out.print(row_text(view.row(k), depth))


def _image_name(image: Image) -> str:
    return f"{image.repository}:{image.tags[0]}" if image.tags else image.manifest.digest


def _waste_dict(w: Waste) -> dict[str, Any]:
    return {"efficiency": w.efficiency, "wasted_bytes": w.wasted_bytes, "user_wasted_percent": w.user_wasted_percent,
            "size_bytes": w.size_bytes, "user_size_bytes": w.user_size_bytes,
            "offenders": [{"path": "/" + o.path, "count": o.count, "bytes": o.bytes} for o in w.top(20)]}


def _find(contents: ImageFiles, pattern: str, out: Console, as_json: bool) -> None:
    matches, truncated = find(contents, pattern)
    if as_json:
        data = [{"path": "/" + f.path, "in_image": f.in_image,
                 "versions": [{"layer": v.layer, "mark": v.mark, "kind": v.kind, "size": v.size, "mode": oct(v.mode),
                               "uid": v.uid, "gid": v.gid, "mtime": v.mtime, "link": v.link} for v in f.versions]}
                for f in matches]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if not matches:
        fail(f"no layer touches {pattern}", 1)
    for f in matches:
        out.print(Text.assemble(("/" + f.path, "bold"), "" if f.in_image else (" (not in the final image)", "red")))
        for v in f.versions:
            out.print(Text.assemble(f"  layer {v.layer:>2}  ", (f"{v.mark:<9}", MARK_STYLE.get(v.mark, "")),
                                    f" {mode_string(v.kind, v.mode)} {v.uid}:{v.gid} {human_size(v.size):>10} "
                                    f"{_time(v.mtime)}" + (f" → {v.link}" if v.link else "")))
    if truncated:
        out.print(f"(only the first {len(matches)} matches)")


def _time(mtime: int) -> str:
    import datetime

    try:
        return datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(mtime)


def _changes(contents: ImageFiles, out: Console, as_json: bool) -> None:
    data = []
    for i, idx in enumerate(contents.layers):
        items = []
        for j, k in enumerate(contents.ids[i]):
            mark = MARK_NAMES[contents.marks[i][j]]
            if mark in ("added", "modified", "removed"):
                items.append({"path": "/" + (contents.paths[k] if k < len(contents.paths) else ""), "mark": mark,
                              "size": idx.size[j]})
        data.append({"layer": i, "digest": idx.digest, "counts": contents.counts(i), "changes": items})
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for layer in data:
        c = layer["counts"]
        out.print(Text(f"layer {layer['layer']} {layer['digest'][:19]}: {c['added']} added, {c['modified']} "
                       f"modified, {c['removed']} removed", style="bold"))
        for item in layer["changes"]:
            out.print(Text(f"  {MARK_LETTER[item['mark']]} {item['path']}", style=MARK_STYLE[item["mark"]]))


@click.command()
@click.argument("target", metavar="ARCHIVE[:IMAGE]")
@click.argument("path")
@click.option("--layer", type=int, metavar="N", help="The version layer N wrote (default: the final image's).")
@click.option("--pretty/--raw", default=None, help="Highlight text or hex-dump binaries (default on a terminal); "
              "--raw writes the bytes.")
def cat(target: str, path: str, layer: int | None, pretty: bool | None) -> None:
    """Print PATH from the image in ARCHIVE (or from one layer), streamed from the archive."""
    archive, ref = split_archive_ref(target)
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    image = select_image(open_one(archive), ref)
    contents = load_files(image, err)
    pretty = sys.stdout.isatty() if pretty is None else pretty
    try:
        if not pretty:
            li, j = locate(contents, path, layer)
            idx = contents.layers[li]
            kind = idx.kind[j]
            if kind != FILE:  # only regular files have bytes
                got = read_file(contents, image.layers, path, layer=layer)
                fail(f"{path} is a {got.kind}" + (f" → {got.link}" if got.link else "") + ", not a regular file")
            for chunk in iter_entry(image.layers[li], idx.data_offset[j], idx.size[j]):
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return
        content = read_file(contents, image.layers, path, layer=layer, head=CAT_HEAD)
    except ContentError as e:
        fail(str(e), 1)
        return
    except BrokenPipeError:
        return
    if content.kind == "symlink":
        out.print(Text(f"{path} → {content.link} (symbolic link, layer {content.layer})"))
        return
    where = f"{path}  layer {content.layer}  {human_size(content.size)}  sha256:{content.sha256}"
    err.print(Text(where, style="dim"))
    if content.is_text:
        text = content.head.decode("utf-8", "replace")
        lexer = Syntax.guess_lexer(path, code=text[:4096])
        out.print(Syntax(text, lexer, line_numbers=False, word_wrap=False, theme="ansi_dark"))
        if content.truncated:
            err.print(f"(first {human_size(len(content.head))} of {human_size(content.size)} shown; --raw for all)")
        return
    out.print(Text(f"binary, {content.size} bytes, sha256:{content.sha256}"))
    out.print(Text(hexdump(content.head[:HEX_HEAD])))
    if content.size > HEX_HEAD:
        out.print(Text(f"... ({content.size - HEX_HEAD} more bytes; --raw writes them)"))


def hexdump(data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        row = data[off:off + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{off:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)


# -- dive's CI thresholds for `regtui verify` ---------------------------------------------------------------
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgtp]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`20M`, `20MB` (10^6, as dive's humanize reads them), `20MiB` (2^20), `1.5G`, `12345`."""
    m = _SIZE.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a size like 20M, 20MiB or 12345")
    base = 1024 if m.group(3) else 1000
    return int(float(m.group(1)) * base ** " kmgtp".index((m.group(2) or " ").lower()))


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number between 0 and 1") from None
    if not 0 <= value <= 1:
        raise click.BadParameter(f"{value} is outside 0..1 (0.9 means 90 %)")
    return value


def ci_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--highest-user-wasted-percent", "highest_user_wasted_percent", metavar="FRACTION",
                     callback=lambda c, p, v: None if v is None else _fraction(v),
                     help="Fail when wasted bytes exceed this share of the non-base layers (dive's CI rule).")(f)
    f = click.option("--highest-wasted-bytes", "highest_wasted_bytes", metavar="SIZE",
                     callback=lambda c, p, v: None if v is None else parse_size(v),
                     help="Fail when an image wastes more than SIZE (20M, 20MiB; dive's CI rule).")(f)
    f = click.option("--lowest-efficiency", "lowest_efficiency", metavar="FRACTION",
                     callback=lambda c, p, v: None if v is None else _fraction(v),
                     help="Fail when an image's efficiency is below this (0.9 = 90 %; dive's CI rule).")(f)
    return f


def check_thresholds(archives: list[Archive], *, lowest_efficiency: float | None, highest_wasted_bytes: int | None,
                     highest_user_wasted_percent: float | None, console: Console) -> bool:
    """Evaluate dive's three CI rules on every image; print each verdict and the offenders. True when all pass."""
    if lowest_efficiency is None and highest_wasted_bytes is None and highest_user_wasted_percent is None:
        return True
    ok = True
    for arc in archives:
        for image in arc.images():
            contents = load_files(image, Console(stderr=True))
            w = analyze(contents)
            failures = []
            if lowest_efficiency is not None and w.efficiency < lowest_efficiency:
                failures.append(f"efficiency {w.efficiency:.4f} is below {lowest_efficiency}")
            if highest_wasted_bytes is not None and w.wasted_bytes > highest_wasted_bytes:
                failures.append(f"wasted {w.wasted_bytes} bytes ({human_size(w.wasted_bytes)}), more than "
                                f"{highest_wasted_bytes}")
            if highest_user_wasted_percent is not None and w.user_wasted_percent > highest_user_wasted_percent:
                failures.append(f"user wasted {w.user_wasted_percent:.4f} of the non-base layers, more than "
                                f"{highest_user_wasted_percent}")
            name = f"{arc.path} {_image_name(image)}"
            head = (f"efficiency {w.efficiency * 100:.2f} %, wasted {human_size(w.wasted_bytes)}, "
                    f"user wasted {w.user_wasted_percent * 100:.2f} %")
            if not contents.complete:
                failures.append("some layers could not be indexed whole (see `regtui files`)")
            if not failures:
                console.print(Text.assemble(("✔ ", "green"), f"{name}: {head}"))
                continue
            ok = False
            console.print(Text.assemble(("✘ ", "bold red"), f"{name}: {head}"))
            for f in failures:
                console.print(Text(f"  fail: {f}", style="red"))
            for o in w.top(10):
                console.print(Text(f"    {human_size(o.bytes):>10}  {o.count} copies  /{o.path}"))
    return ok

