"""Hash a blob and, for layers, its decompressed stream in one read: sha256 of the bytes and the diff_id.

Reading and hashing the compressed bytes runs in the caller's thread; inflating and hashing the output runs
in a second thread fed by a small queue, so both cores work on one large layer (hashlib and isal release the
GIL on large buffers).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from isal import isal_zlib

from regtui.oci.model import Location

CHUNK = 1 << 20
MIN_BOMB_LIMIT = 1 << 30
MAX_RATIO = 1100  # gzip cannot exceed ~1032:1; anything beyond is a crafted (zstd) bomb
# Real gzip layers inflate 2-10:1; a few MiB of deflated zeros reach deflate's ~1030:1 ceiling and would make
# verification inflate gigabytes, so past MIN_BOMB_LIMIT a gzip layer may not exceed this ratio either.
GZIP_MAX_RATIO = 256
RATIO_ENV = "REGTUI_MAX_INFLATE_RATIO"  # a user whose real layers exceed the ratio can raise it


def _ratio(compression: str | None) -> int:
    try:
        return max(1, int(os.environ[RATIO_ENV]))
    except (KeyError, ValueError):
        return GZIP_MAX_RATIO if compression == "gzip" else MAX_RATIO


class Cancelled(Exception):
    pass


class InflateError(Exception):
    """The layer does not decompress: corrupt data, or a decompression bomb."""


@dataclass
class HashResult:
    digest: str  # sha256 of the stored bytes
    size: int  # bytes actually read
    diff_id: str | None = None  # sha256 of the decompressed stream, when asked for
    uncompressed_size: int | None = None
    inflate_error: str | None = None


class _QueueReader:
    """A file-like view of the reader's queue, for zstandard's bounded stream_reader."""

    def __init__(self, take: Callable[[], bytes | None]):
        self._take = take
        self._buf = b""
        self._done = False

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buf) < n):
            item = self._take()
            if item is None:
                self._done = True
            else:
                self._buf += item
        if n < 0:
            n = len(self._buf)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


class _Inflater:
    """Inflates what the reader queues and hashes the output, refusing to go past `limit` bytes."""

    def __init__(
        self,
        compression: str | None,
        limit: int,
        cancel: threading.Event | None = None,
        sink: Callable[[bytes], None] | None = None,
    ):
        self.compression = compression
        self.sink = sink
        self.limit = limit
        self.cancel = cancel
        self.total = 0
        self.hasher = hashlib.sha256()
        self.ended = False  # the reader's end mark was taken from the queue

    def take(self, q: queue.Queue[bytes | None]) -> bytes | None:
        item = q.get()
        if item is None:
            self.ended = True
        return item

    def run(self, q: queue.Queue[bytes | None]) -> None:
        if self.compression == "zstd":
            import zstandard

            source: Any = _QueueReader(lambda: self.take(q))  # file-like enough: zstandard only calls read()
            reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=CHUNK)
            while out := reader.read(CHUNK * 4):
                self._emit(out)
            return
        d = isal_zlib.decompressobj(wbits=31) if self.compression == "gzip" else None
        while (data := self.take(q)) is not None:
            if d is None:
                self._emit(data)
                continue
            while data:
                # Bound each call's output so a bomb cannot allocate gigabytes at once.
                self._emit(d.decompress(data, CHUNK * 4))
                data = d.unconsumed_tail
                if d.eof:
                    rest = d.unused_data
                    if rest.strip(b"\x00"):  # another gzip member follows (pigz, concatenated streams)
                        d = isal_zlib.decompressobj(wbits=31)
                        data = rest + data
                    else:
                        data = b""
        if d is not None and not d.eof:
            raise InflateError("gzip stream ends early; the layer is truncated")

    def _emit(self, out: bytes) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()  # the reader may be done already; do not inflate what is queued
        if out:
            self.total += len(out)
            if self.total > self.limit:
                ratio = _ratio(self.compression)
                if self.compression == "gzip":  # deflate's ceiling is ~1030:1: zeros, not necessarily an attack
                    raise InflateError(
                        f"inflates past {self.limit} bytes (over {ratio}:1); a decompression bomb, "
                        f"or a layer of almost nothing but zeros; not unpacked (set {RATIO_ENV}=1100 "
                        "to check such a layer anyway)"
                    )
                raise InflateError(
                    f"inflates past {self.limit} bytes (over {ratio}:1); a decompression bomb "
                    f"(set {RATIO_ENV} higher to check it anyway)"
                )
            self.hasher.update(out)
            if self.sink is not None:
                self.sink(out)


def hash_blob(
    loc: Location,
    *,
    compression: str | None = None,
    want_diff_id: bool = False,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    sink: Callable[[bytes], None] | None = None,
) -> HashResult:
    """Hash `loc`; with `want_diff_id`, also inflate (`compression`) and hash the result.

    `sink` sees every decompressed byte in order (with `want_diff_id`), so a layer's contents can be indexed in
    the same pass that checks its diff_id; it must not raise.
    """
    hasher = hashlib.sha256()
    plain = want_diff_id and compression is None  # an uncompressed layer is its own diff_id: hash once
    limit = max(MIN_BOMB_LIMIT, _ratio(compression) * loc.size)
    inflater = _Inflater(compression, limit, cancel, sink) if want_diff_id and not plain else None
    q: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    failure: list[BaseException] = []
    stop = threading.Event()

    def inflate_worker(inflater: _Inflater) -> None:
        try:
            inflater.run(q)
        except BaseException as e:  # reported as the layer's problem, never raised in a thread
            failure.append(e)
            stop.set()
            while not inflater.ended and inflater.take(q) is not None:  # drain: the reader must never block
                pass

    worker = (
        threading.Thread(target=inflate_worker, args=(inflater,), name="regtui-inflate", daemon=True)
        if inflater
        else None
    )
    if worker:
        worker.start()
    read = 0
    fd = os.open(loc.path, os.O_RDONLY)
    try:
        while read < loc.size:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            chunk = os.pread(fd, min(CHUNK, loc.size - read), loc.offset + read)
            if not chunk:
                break
            hasher.update(chunk)
            if plain and sink is not None:
                sink(chunk)
            read += len(chunk)
            if worker and not stop.is_set():
                q.put(chunk)
            if progress:
                progress(len(chunk))
    finally:
        os.close(fd)
        if worker:
            q.put(None)
            worker.join()
    result = HashResult("sha256:" + hasher.hexdigest(), read)
    if plain:
        result.diff_id, result.uncompressed_size = result.digest, read
    if inflater:
        if failure and isinstance(failure[0], Cancelled):
            raise Cancelled()
        if failure:
            e = failure[0]
            result.inflate_error = (
                str(e) if isinstance(e, InflateError) else f"does not decompress as {compression}: {e}"
            )
        else:
            result.diff_id = "sha256:" + inflater.hasher.hexdigest()
            result.uncompressed_size = inflater.total
    return result
