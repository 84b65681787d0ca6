"""`regtui cat ARCHIVE[:IMAGE] PATH [--layer N]`: one file's bytes, streamed from the archive; on a terminal, text
highlighted by its extension and binaries as a hex dump head with size and sha256."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from regtui.cli.common import fail
from regtui.cli.contents import load_files, open_one, select_image, split_archive_ref
from regtui.oci.contents.read import ContentError, iter_entry, locate, read_file
from regtui.oci.contents.tarscan import FILE
from regtui.oci.units import human_size

CAT_HEAD = 1 << 20  # text shown highlighted; the sha256 still covers every byte
HEX_HEAD = 512


@click.command("cat")
@click.argument("target", metavar="ARCHIVE[:IMAGE]")
@click.argument("path")
@click.option(
    "--layer", type=int, metavar="N", help="The version layer N wrote (1 = base; default: the final image's)."
)
@click.option(
    "--pretty/--raw",
    default=None,
    help="Highlight text or hex-dump binaries (default on a terminal); --raw writes the bytes.",
)
def command(target: str, path: str, layer: int | None, pretty: bool | None) -> None:
    """Print PATH from the image in ARCHIVE (or from one layer), streamed from the archive."""
    archive, ref = split_archive_ref(target)
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    image = select_image(open_one(archive), ref)
    contents = load_files(image, err)
    pretty = sys.stdout.isatty() if pretty is None else pretty
    layer = None if layer is None else layer - 1  # the Layers view's numbering, 1 = base
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
        out.print(Text(f"{path} → {content.link} (symbolic link, layer {content.layer + 1})"))
        return
    where = f"{path}  layer {content.layer + 1}  {human_size(content.size)}  sha256:{content.sha256}"
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
        row = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{off:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)
