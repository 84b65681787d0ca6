"""What `regtui files`, `regtui cat` and verify's dive CI thresholds share: choosing an image, indexing its layers
with a progress bar, and printing rows; the thresholds themselves (`--lowest-efficiency`,
`--highest-wasted-bytes`, `--highest-user-wasted-percent`, as dive's CI mode reads them).
"""

from __future__ import annotations

import os
import re
import stat
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
from rich.text import Text

from regtui.cli.common import fail, open_or_fail
from regtui.oci.contents import ImageFiles, load_image_files
from regtui.oci.contents.view import Row
from regtui.oci.contents.waste import Waste, analyze
from regtui.oci.hashing import Cancelled
from regtui.oci.model import Archive, Image
from regtui.oci.units import human_size

PROGRESS_FROM = 32 << 20
MARK_STYLE = {"added": "green", "modified": "yellow", "removed": "red", "unchanged": "", "no-op": "dim"}
MARK_LETTER = {"added": "A", "modified": "M", "removed": "D", "unchanged": " ", "no-op": "-"}
CAT_HEAD = 1 << 20  # text shown highlighted; the sha256 still covers every byte
HEX_HEAD = 512


def open_one(path: str) -> Archive:
    return open_or_fail([path])[0]


def split_archive_ref(text: str) -> tuple[str, str | None]:
    """`ARCHIVE[:IMAGE]`: the longest prefix that exists on disk is the archive (paths and refs both have ':')."""
    if os.path.exists(text):
        return text, None
    for m in reversed(list(re.finditer(":", text))):
        if os.path.exists(text[: m.start()]):
            return text[: m.start()], text[m.start() + 1 :] or None
    return text, None


def select_image(archive: Archive, ref: str | None) -> Image:
    images = archive.images()
    if not images:
        fail(f"{archive.path}: holds no image")
    if ref is None:
        if len(images) > 1:
            fail(f"{archive.path} holds {len(images)} images; choose one with --image ({_names(images)})")
        return images[0]
    number = ref.removeprefix("#")
    if number.isdigit() and int(number) < len(images):
        return images[int(number)]
    for img in images:
        names = {f"{img.repository}:{t}" for t in img.tags} | set(img.tags)
        if ref in names or img.manifest.digest.startswith(ref) or (img.platform and str(img.platform) == ref):
            return img
    fail(f"{archive.path}: no image {ref!r}; it holds {_names(images)}")


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
        columns = (
            TextColumn("[bold]index[/] {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
        )
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("layers", total=total)

            def progress(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, description=escape(what))

            return load_image_files(image, progress=progress, cancel=cancel)
    except (KeyboardInterrupt, Cancelled):
        cancel.set()
        fail("indexing interrupted", 130)


def mode_string(kind: str, mode: int) -> str:
    letter = {"dir": "d", "symlink": "l", "char": "c", "block": "b", "fifo": "p"}.get(kind, "-")
    return letter + stat.filemode(mode)[1:]


def summary_lines(files: ImageFiles, waste: Waste) -> list[str]:
    out = [
        (
            f"efficiency: {waste.efficiency * 100:.4f} %   wasted: {waste.wasted_bytes} bytes "
            f"({human_size(waste.wasted_bytes)})   user wasted: {waste.user_wasted_percent * 100:.4f} %"
        )
    ]
    for idx in files.layers:
        if not idx.complete or idx.problem_count:
            state = "incomplete" if not idx.complete else "note"
            for p in idx.problems:
                out.append(f"{state}: layer {idx.digest[:19]}: {p}")
            if idx.problem_count > len(idx.problems):
                out.append(f"{state}: layer {idx.digest[:19]}: and {idx.problem_count - len(idx.problems)} more")
    return out


def row_dict(row: Row) -> dict[str, Any]:
    return {
        "path": "/" + row.path,
        "kind": row.kind,
        "mode": oct(row.mode),
        "uid": row.uid,
        "gid": row.gid,
        "size": row.size,
        "mtime": row.mtime,
        "link": row.link,
        "mark": row.mark,
        "layer": row.layer + 1 if row.layer >= 0 else None,
    }


def row_text(row: Row, depth: int | None) -> Text:
    style = MARK_STYLE.get(row.mark, "")
    name = row.name if depth is not None else "/" + row.path
    if row.link:
        name += f" → {row.link}"
    meta = (
        f"{MARK_LETTER.get(row.mark, ' ')} {mode_string(row.kind, row.mode)} {row.uid:>5}:{row.gid:<5} "
        f"{human_size(row.size):>10}  "
    )
    indent = "    " * depth if depth else ""
    return Text.assemble((meta, style), indent, (name + ("/" if row.kind == "dir" else ""), style))


def image_name(image: Image) -> str:
    return f"{image.repository}:{image.tags[0]}" if image.tags else image.manifest.digest


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
    f = click.option(
        "--highest-user-wasted-percent",
        "highest_user_wasted_percent",
        metavar="FRACTION",
        callback=lambda c, p, v: None if v is None else _fraction(v),
        help="Fail when wasted bytes exceed this share of the non-base layers (dive's CI rule).",
    )(f)
    f = click.option(
        "--highest-wasted-bytes",
        "highest_wasted_bytes",
        metavar="SIZE",
        callback=lambda c, p, v: None if v is None else parse_size(v),
        help="Fail when an image wastes more than SIZE (20M, 20MiB; dive's CI rule).",
    )(f)
    f = click.option(
        "--lowest-efficiency",
        "lowest_efficiency",
        metavar="FRACTION",
        callback=lambda c, p, v: None if v is None else _fraction(v),
        help="Fail when an image's efficiency is below this (0.9 = 90 %; dive's CI rule).",
    )(f)
    return f


def check_thresholds(
    archives: list[Archive],
    *,
    lowest_efficiency: float | None,
    highest_wasted_bytes: int | None,
    highest_user_wasted_percent: float | None,
    console: Console,
) -> bool:
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
                failures.append(
                    f"wasted {w.wasted_bytes} bytes ({human_size(w.wasted_bytes)}), more than {highest_wasted_bytes}"
                )
            if highest_user_wasted_percent is not None and w.user_wasted_percent > highest_user_wasted_percent:
                failures.append(
                    f"user wasted {w.user_wasted_percent:.4f} of the non-base layers, more than "
                    f"{highest_user_wasted_percent}"
                )
            name = f"{arc.path} {image_name(image)}"
            head = (
                f"efficiency {w.efficiency * 100:.2f} %, wasted {human_size(w.wasted_bytes)}, "
                f"user wasted {w.user_wasted_percent * 100:.2f} %"
            )
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
