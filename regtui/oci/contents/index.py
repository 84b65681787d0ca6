"""One layer's entries in compact columns, built in the pass that checks the layer's digest and diff_id, and
cached by layer digest beside the verify cache.

Columns are `array`s (about 60 bytes an entry) plus one blob of UTF-8 paths and link targets, so a layer of a
million files costs ~100 MiB, not gigabytes, and loads from the cache with a few `frombytes` calls.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from regtui.oci.cache import cache_dir, write_atomic
from regtui.oci.contents.tarscan import Member, TarScanner
from regtui.oci.hashing import hash_blob
from regtui.oci.model import Layer

INDEX_FORMAT = 1
MAGIC = b"RTIX"
# (name, typecode) of each column, in the order they are stored.
COLUMNS = (
    ("kind", "B"),
    ("mode", "I"),
    ("uid", "I"),
    ("gid", "I"),
    ("size", "Q"),
    ("mtime", "q"),
    ("crc", "I"),
    ("data_offset", "Q"),
    ("name_offset", "Q"),
    ("name_len", "I"),
    ("link_len", "I"),
)


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@dataclass
class LayerIndex:
    """Every entry of one layer, in tar order. Entry `j`'s path is `names[name_offset[j]:+name_len[j]]` and its
    link target follows it."""

    digest: str
    compression: str | None
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    uncompressed_size: int | None = None
    diff_id: str | None = None
    cached: bool = False
    names: bytearray = field(default_factory=bytearray)
    # From the pass that built it (not cached): did the blob hash to its digest, did it inflate.
    digest_ok: bool | None = None
    inflate_error: str | None = None

    def __post_init__(self) -> None:
        for name, code in COLUMNS:
            setattr(self, name, array(code))

    # The columns (filled by `add` or `from_bytes`).
    kind: array[int] = field(init=False, repr=False)
    mode: array[int] = field(init=False, repr=False)
    uid: array[int] = field(init=False, repr=False)
    gid: array[int] = field(init=False, repr=False)
    size: array[int] = field(init=False, repr=False)
    mtime: array[int] = field(init=False, repr=False)
    crc: array[int] = field(init=False, repr=False)
    data_offset: array[int] = field(init=False, repr=False)
    name_offset: array[int] = field(init=False, repr=False)
    name_len: array[int] = field(init=False, repr=False)
    link_len: array[int] = field(init=False, repr=False)

    def __len__(self) -> int:
        return len(self.kind)

    def path(self, j: int) -> str:
        o = self.name_offset[j]
        return self.names[o : o + self.name_len[j]].decode("utf-8", "surrogateescape")

    def link(self, j: int) -> str:
        o = self.name_offset[j] + self.name_len[j]
        return self.names[o : o + self.link_len[j]].decode("utf-8", "surrogateescape")

    def add(self, m: Member) -> None:
        name, link = _enc(m.path), _enc(m.link)
        self.kind.append(m.kind)
        self.mode.append(m.mode)
        self.uid.append(m.uid)
        self.gid.append(m.gid)
        self.size.append(m.size)
        self.mtime.append(m.mtime)
        self.crc.append(0)
        self.data_offset.append(m.data_offset)
        self.name_offset.append(len(self.names))
        self.name_len.append(len(name))
        self.link_len.append(len(link))
        self.names += name
        self.names += link

    def set_crc(self, crc: int) -> None:
        self.crc[-1] = crc

    def file_bytes(self) -> int:
        """dive's layer size: the sum of every entry's size as the tar header states it."""
        return sum(self.size)

    # -- cache file --------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        head = json.dumps(
            {
                "format": INDEX_FORMAT,
                "byteorder": sys.byteorder,
                "digest": self.digest,
                "compression": self.compression,
                "complete": self.complete,
                "problems": self.problems,
                "problem_count": self.problem_count,
                "uncompressed_size": self.uncompressed_size,
                "diff_id": self.diff_id,
                "entries": len(self),
                "names": len(self.names),
            }
        ).encode()
        parts = [MAGIC, len(head).to_bytes(4, "little"), head]
        parts += [getattr(self, name).tobytes() for name, _ in COLUMNS]
        parts.append(bytes(self.names))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> LayerIndex | None:
        """None for anything that is not a cache file of this format and machine (a miss, never an error)."""
        try:
            if data[:4] != MAGIC:
                return None
            n = int.from_bytes(data[4:8], "little")
            head = json.loads(data[8 : 8 + n])
            if head["format"] != INDEX_FORMAT or head["byteorder"] != sys.byteorder:
                return None
            idx = cls(
                head["digest"],
                head["compression"],
                head["complete"],
                list(head["problems"]),
                int(head["problem_count"]),
                head["uncompressed_size"],
                head["diff_id"],
                cached=True,
            )
            pos, count = 8 + n, int(head["entries"])
            for name, _ in COLUMNS:
                col = getattr(idx, name)
                end = pos + count * col.itemsize
                col.frombytes(data[pos:end])
                if len(col) != count:
                    return None
                pos = end
            idx.names = bytearray(data[pos : pos + int(head["names"])])
            if len(idx.names) != int(head["names"]) or pos + len(idx.names) != len(data):
                return None
            return idx
        except (ValueError, KeyError, TypeError, IndexError):
            return None


def cache_path(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    safe = "".join(c for c in hexd if c in "0123456789abcdef")[:128]
    return os.path.join(cache_dir("contents"), f"{algo if algo.isalnum() else 'x'}-{safe}.v{INDEX_FORMAT}.idx")


def load_cached(digest: str) -> LayerIndex | None:
    try:
        with open(cache_path(digest), "rb") as f:
            idx = LayerIndex.from_bytes(f.read())
    except OSError:
        return None
    return idx if idx is not None and idx.digest == digest else None


def save_cached(idx: LayerIndex) -> None:
    try:
        write_atomic(cache_path(idx.digest), idx.to_bytes())
    except OSError:
        pass  # a read-only cache only costs speed


class Indexer:
    """The sink `hash_blob` feeds: scans tar headers into a `LayerIndex`."""

    def __init__(self, digest: str, compression: str | None):
        self.index = LayerIndex(digest, compression)
        self.scanner = TarScanner(self._member, self.index.set_crc)

    def _member(self, m: Member) -> None:
        self.index.add(m)

    def feed(self, data: bytes) -> None:
        self.scanner.feed(data)

    def finish(self, *, stream_error: str | None = None) -> LayerIndex:
        if stream_error:
            self.scanner.stop(stream_error)
        self.scanner.close()
        idx = self.index
        idx.complete = self.scanner.complete
        idx.problems = self.scanner.problems
        idx.problem_count = self.scanner.problem_count
        return idx


def index_layer(
    layer: Layer,
    *,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    use_cache: bool = True,
) -> LayerIndex:
    """The layer's index: from the cache, or by reading the blob once (digest, diff_id and headers together).

    Raises `hashing.Cancelled` when cancelled. A blob the archive does not hold gives an empty, incomplete index.
    """
    if use_cache and (hit := load_cached(layer.digest)) is not None:
        if progress and layer.location:
            progress(layer.location.size)
        return hit
    if layer.location is None:
        idx = LayerIndex(layer.digest, layer.compression, complete=False)
        idx.problems = ["the archive does not hold this layer; its files are unknown"]
        idx.problem_count = 1
        return idx
    indexer = Indexer(layer.digest, layer.compression)
    try:
        r = hash_blob(
            layer.location,
            compression=layer.compression,
            want_diff_id=True,
            progress=progress,
            cancel=cancel,
            sink=indexer.feed,
        )
    except OSError as e:
        return indexer.finish(stream_error=f"cannot read the layer: {e.strerror or e}")
    idx = indexer.finish(stream_error=r.inflate_error)
    idx.uncompressed_size, idx.diff_id, idx.inflate_error = r.uncompressed_size, r.diff_id, r.inflate_error
    idx.digest_ok = digest_ok = r.digest == layer.digest and r.size == layer.descriptor.size
    if not digest_ok:
        idx.complete = False
        idx.problems.insert(0, f"the blob's digest is {r.digest}, not {layer.digest}; its index is not cached")
        idx.problem_count += 1
    elif use_cache:
        save_cached(idx)
    return idx
