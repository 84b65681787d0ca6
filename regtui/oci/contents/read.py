"""Read one file's bytes from a layer (layers are 0-based indexes here, 1-based in messages, as the UI counts),
streamed: an uncompressed layer is read at the member's offset; a gzip or
zstd layer is inflated from its start up to the member and no further. Memory stays bounded by the chunk size
and the `head` kept for display; the sha256 covers every byte.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import zstandard
from isal import isal_zlib

from regtui.oci.contents.merge import NONE, ImageFiles, path_id, unpack
from regtui.oci.contents.tarscan import FILE, HARDLINK, KIND_NAMES, SYMLINK
from regtui.oci.hashing import Cancelled
from regtui.oci.model import Layer

CHUNK = 1 << 20
MAX_HOPS = 40  # as Linux's symlink limit
HEAD = 64 * 1024


class ContentError(Exception):
    """A file cannot be read: not in the image, not a file, a link loop, a damaged layer."""


@dataclass
class FileContent:
    path: str
    layer: int
    size: int
    sha256: str
    head: bytes  # the first `head` bytes
    is_text: bool
    kind: str = "file"
    link: str = ""  # for a symlink read without following: its target

    @property
    def truncated(self) -> bool:
        return len(self.head) < self.size


def looks_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3 and e.reason == "unexpected end of data"  # a character cut by `head`
    return True


def locate(files: ImageFiles, path: str, layer: int | None = None) -> tuple[int, int]:
    """(layer, entry) holding the content of `path`: in the final image, following symlinks, or exactly that
    layer's entry. Raises ContentError with the reason."""
    if layer is not None:
        if not 0 <= layer < len(files.layers):
            raise ContentError(f"no layer {layer + 1}: the image has layers 1..{len(files.layers)}")
        k = path_id(files, path)
        j = files.entry_in(layer, k) if k >= 0 else -1
        if j < 0:
            touched = [v.layer for v in files.versions(k)] if k >= 0 else []
            where = f"; it is in layers {', '.join(str(t + 1) for t in touched)}" if touched else "; no layer has it"
            raise ContentError(f"layer {layer + 1} does not touch {path}{where}")
        return _through_hardlinks(files, layer, j)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    cur: list[str] = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if cur:
                cur.pop()
            continue
        k = files.id_of.get("/".join(cur + [name]), -1)
        if k < 0 or not files.visible[k]:
            raise ContentError(f"{path}: {'/'.join(cur + [name])} is not in the image")
        ref = files.present[k]
        if ref != NONE:
            li, lj = unpack(ref)
            idx = files.layers[li]
            if idx.kind[lj] == SYMLINK:
                hops += 1
                if hops > MAX_HOPS:
                    raise ContentError(f"{path}: more than {MAX_HOPS} symbolic links; a link loop")
                target = idx.link(lj)
                if target.startswith("/"):
                    cur = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
        cur.append(name)
    k = files.id_of.get("/".join(cur), -1)
    if k < 0 or files.present[k] == NONE:
        raise ContentError(f"{path} is a directory" if k >= 0 else f"{path} is not in the image")
    return _through_hardlinks(files, *unpack(files.present[k]))


def _through_hardlinks(files: ImageFiles, layer: int, j: int) -> tuple[int, int]:
    for _ in range(MAX_HOPS):
        idx = files.layers[layer]
        if idx.kind[j] != HARDLINK:
            return layer, j
        k = files.id_of.get(idx.link(j), -1)
        found = files.entry_in(layer, k) if k >= 0 else -1
        if found < 0 or found == j:
            for lower in range(layer - 1, -1, -1):  # a link to a file a lower layer holds
                found = files.entry_in(lower, k) if k >= 0 else -1
                if found >= 0:
                    layer = lower
                    break
            else:
                raise ContentError(f"hard link {idx.path(j)} points at {idx.link(j)}, which no layer holds")
        j = found
    raise ContentError(f"more than {MAX_HOPS} hard links in a row; a link loop")


def read_file(
    files: ImageFiles,
    layers: list[Layer],
    path: str,
    *,
    layer: int | None = None,
    head: int = HEAD,
    cancel: threading.Event | None = None,
) -> FileContent:
    li, j = locate(files, path, layer)
    idx = files.layers[li]
    kind = idx.kind[j]
    if kind == SYMLINK:
        return FileContent(path, li, 0, hashlib.sha256().hexdigest(), b"", True, "symlink", idx.link(j))
    if kind != FILE:
        what = {"dir": "directory", "char": "character device", "block": "block device"}.get(
            KIND_NAMES[kind], KIND_NAMES[kind]
        )
        raise ContentError(f"{path} is a {what} in layer {li + 1}, not a regular file")
    h = hashlib.sha256()
    kept = bytearray()
    for chunk in iter_entry(layers[li], idx.data_offset[j], idx.size[j], cancel=cancel):
        h.update(chunk)
        if len(kept) < head:
            kept += chunk[: head - len(kept)]
    data = bytes(kept)
    return FileContent(path, li, idx.size[j], h.hexdigest(), data, looks_text(data))


def iter_entry(layer: Layer, offset: int, size: int, *, cancel: threading.Event | None = None) -> Iterator[bytes]:
    """The `size` bytes at `offset` of the layer's decompressed stream."""
    loc = layer.location
    if loc is None:
        raise ContentError("the archive does not hold this layer")
    got = 0
    if layer.compression is None:
        fd = os.open(loc.path, os.O_RDONLY)
        try:
            while got < size:
                chunk = os.pread(fd, min(CHUNK, size - got), loc.offset + offset + got)
                if not chunk:
                    break
                got += len(chunk)
                yield chunk
        finally:
            os.close(fd)
    else:
        pos = 0
        for chunk in _inflate(loc.path, loc.offset, loc.size, layer.compression, cancel):
            end = pos + len(chunk)
            if end > offset and got < size:
                part = chunk[max(0, offset - pos) : offset + size - pos]
                got += len(part)
                yield part
            pos = end
            if got >= size:
                break
    if got < size:
        raise ContentError(f"the layer ends {size - got} bytes before the file does; it is truncated")


def _raw(path: str, offset: int, size: int, cancel: threading.Event | None) -> Iterator[bytes]:
    fd = os.open(path, os.O_RDONLY)
    try:
        done = 0
        while done < size:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            chunk = os.pread(fd, min(CHUNK, size - done), offset + done)
            if not chunk:
                return
            done += len(chunk)
            yield chunk
    finally:
        os.close(fd)


class _Reader:
    def __init__(self, it: Iterator[bytes]):
        self._it = it

    def read(self, n: int = -1) -> bytes:
        return next(self._it, b"")


def _inflate(path: str, offset: int, size: int, compression: str, cancel: threading.Event | None) -> Iterator[bytes]:
    raw = _raw(path, offset, size, cancel)
    if compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(_Reader(raw), read_size=CHUNK)  # type: ignore[arg-type]
        while out := reader.read(CHUNK * 4):
            yield out
        return
    d = isal_zlib.decompressobj(wbits=31)
    for data in raw:
        while data:
            out = d.decompress(data, CHUNK * 4)
            if out:
                yield out
            data = d.unconsumed_tail
            if d.eof:
                rest = d.unused_data
                if rest.strip(b"\0"):
                    d = isal_zlib.decompressobj(wbits=31)
                    data = rest + data
                else:
                    return
    if tail := d.flush():
        yield tail
