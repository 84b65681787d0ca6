"""Unpack a compressed package once into the cache, streaming, and reuse it on every later open.

Safe against a second regtui doing the same (an `fcntl` lock per package, the folder renamed into place only
when complete), against bombs (free space checked first, output bounded by the inflate ratio and by the free
space), and against names that would leave the cache (only regular files and folders, `..` and absolute names
refused). Nothing is held in memory beyond one chunk.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import zstandard

from regtui.oci.cache import cache_dir, write_atomic
from regtui.oci.errors import ArchiveError
from regtui.oci.hashing import RATIO_ENV, _ratio
from regtui.oci.store import MAX_MEMBERS, _clean
from regtui.oci.zarf.sources import (
    ZSTD_MAGIC,
    PartsReader,
    ProgressFn,
    SplitInfo,
    UnpackProgress,
    identity,
    source_parts,
)
from regtui.oci.zarf.tarstream import ChunkStream, members
from regtui.oci.zarf.zstdproc import Decompressed, ParallelHash, ZstdError

CHUNK = 1 << 20
RESERVE = 64 << 20  # left free on the cache's file system
MARKER_SUFFIX = ".json"
_BLOB = re.compile(r"^images/blobs/sha256/([a-f0-9]{64})$")


def zarf_cache_root() -> str:
    return cache_dir("zarf")


@contextmanager
def package_lock(root: str, key: str, blocking: bool = True) -> Iterator[bool]:
    """Exclusive lock for one cached package; yields False when not blocking and someone else holds it."""
    fd = os.open(os.path.join(root, key + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


_HELD: dict[str, int] = {}  # key -> fd holding a shared lock: packages this process has open


def _hold(root: str, key: str) -> None:
    """Pin an opened package for this process's life: `regtui cache prune` skips it while we serve it."""
    if key in _HELD:
        return
    fd = os.open(os.path.join(root, key + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # being pruned or rebuilt right now; nothing to pin
        os.close(fd)
        return
    _HELD[key] = fd


def release_holds() -> None:
    """Unpin every package this process opened (tests; a process exiting releases them anyway)."""
    while _HELD:
        os.close(_HELD.popitem()[1])


def _complete(root: str, key: str) -> bool:
    return os.path.isdir(os.path.join(root, key)) and os.path.isfile(os.path.join(root, key + MARKER_SUFFIX))


def unpack_to_cache(path: str, form: str, progress: ProgressFn | None = None) -> str:
    """The cache folder holding the package's files, unpacking it first if no finished one exists."""
    parts, split = source_parts(path, form)
    key = identity(path, parts)
    root = zarf_cache_root()
    final = os.path.join(root, key)
    marker = final + MARKER_SUFFIX
    if _complete(root, key):
        _hold(root, key)
        if _complete(root, key):  # still there once pinned: a prune can no longer take it
            os.utime(marker)  # last use, for `regtui cache prune --older-than`
            return final
    if key in _HELD:  # our pin on a folder removed meanwhile: let go, or the lock below would wait on us
        os.close(_HELD.pop(key))
    total = sum(os.stat(p).st_size for p in parts)
    start = time.monotonic()
    with package_lock(root, key, blocking=False) as free:
        if not free and progress:
            progress(UnpackProgress(0, total, 0, 0.0, waiting=True))
    with package_lock(root, key):
        if _complete(root, key):  # another regtui finished it while we waited
            os.utime(marker)
        else:
            _unpack(path, form, root, key, parts, split, total, start, progress)
    _hold(root, key)
    return final


def _unpack(
    path: str,
    form: str,
    root: str,
    key: str,
    parts: list[str],
    split: SplitInfo | None,
    total: int,
    start: float,
    progress: ProgressFn | None,
) -> None:
    """Unpack into a temporary folder and rename it into place; the caller holds the package's lock."""
    final = os.path.join(root, key)
    for stale in [final, *glob.glob(os.path.join(root, f".tmp-{key}-*"))]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a regtui that died; the lock says none runs
    tmp = os.path.join(root, f".tmp-{key}-{os.getpid()}")
    os.mkdir(tmp)
    try:
        reader = PartsReader(parts, hashed=split is not None)
        try:
            written = _extract(reader, tmp, path, total, start, progress)
            if split is not None:
                reader.drain()
        finally:
            reader.close()
        if split is not None and reader.hash.hexdigest() != split.sha256:
            raise ArchiveError(
                f"the parts' sha256 is {reader.hash.hexdigest()}, .part000 says {split.sha256}",
                path=path,
                hint="a part is corrupt or from another package; copy them again",
            )
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.monotonic() - start
    meta = {
        "source": os.path.realpath(path),
        "form": form,
        "compressed_bytes": total,
        "bytes": written,
        "seconds": round(seconds, 3),
        "created": time.time(),
    }
    write_atomic(final + MARKER_SUFFIX, json.dumps(meta).encode())


def _check_space(root: str, path: str, head: bytes, total: int) -> int:
    """Free bytes we may fill; refuses before starting when the package cannot fit."""
    free = shutil.disk_usage(root).free - RESERVE
    try:
        need = zstandard.frame_content_size(head)
    except zstandard.ZstdError:
        need = -1
    if need < 0:
        need = total  # unknown: image layers are compressed already, so the tar is about the file's size
    if need > free:
        raise ArchiveError(
            f"needs about {need >> 20} MiB in the cache ({root}), {max(free, 0) >> 20} MiB are free",
            path=path,
            hint="free some space, run `regtui cache prune`, or point XDG_CACHE_HOME elsewhere",
        )
    return free


def _extract(reader: PartsReader, dest: str, path: str, total: int, start: float, progress: ProgressFn | None) -> int:
    first = reader.paths[0]
    with open(first, "rb") as f:
        head = f.read(18)
    free = _check_space(os.path.dirname(dest), path, head, total)
    limit = min(free, max(total, 1) * _ratio(None))
    written = 0
    last = 0.0
    source = Decompressed(reader, CHUNK, compressed=head[:4] == ZSTD_MAGIC)
    stream = ChunkStream(source)
    hasher = ParallelHash()
    try:
        for count, info in enumerate(members(stream), 1):
            if count > MAX_MEMBERS:
                raise ArchiveError(
                    f"holds more than {MAX_MEMBERS} files; refused",
                    path=path,
                    hint="no Zarf package needs that many; it is malformed or hostile",
                )
            name = _clean(info.name, path=path)
            if not name:
                continue
            if info.isdir():
                _makedirs(dest, name, path)
                continue
            if not info.isreg():
                raise ArchiveError(
                    "is a link or special file; Zarf packages hold only files and folders",
                    member=info.name,
                    path=path,
                    hint="the package is malformed or hostile",
                )
            if written + info.size > limit:
                raise _too_big(path, written + info.size, free, total)
            digest = _write(stream, hasher, dest, name, info.size, path)
            written += info.size
            m = _BLOB.match(name)
            if m and digest != m.group(1):
                raise ArchiveError(
                    f"blob hashes to sha256:{digest}, not to its name",
                    member=name,
                    path=path,
                    hint="the package is corrupt or was tampered with; nothing was cached",
                )
            now = time.monotonic()
            if progress and now - last >= 0.1:
                last = now
                progress(UnpackProgress(source.consumed, total, written, now - start, name))
        source.finish()
    except ZstdError as e:
        raise ArchiveError(
            f"is not valid zstd data ({e})", path=path, hint="the file is truncated or corrupt; copy it again"
        ) from None
    except tarfile.TarError as e:
        raise ArchiveError(
            f"does not hold a valid tar ({e})", path=path, hint="the file is truncated or corrupt; copy it again"
        ) from None
    except EOFError:
        raise ArchiveError(
            "ends in the middle of a file", path=path, hint="the package is truncated; copy it again"
        ) from None
    finally:
        hasher.close()
        stream.close()
        source.close()
    if progress:
        progress(UnpackProgress(source.consumed, total, written, time.monotonic() - start))
    return written


def _too_big(path: str, size: int, free: int, total: int) -> ArchiveError:
    if size > free:
        return ArchiveError(
            f"unpacks to more than the {free >> 20} MiB free in the cache",
            path=path,
            hint="free some space, run `regtui cache prune`, or point XDG_CACHE_HOME elsewhere",
        )
    return ArchiveError(
        f"unpacks to more than {size // max(total, 1)}x its size; stopped as a decompression bomb",
        path=path,
        hint=f"set {RATIO_ENV} higher if the package really holds that much",
    )


def _makedirs(dest: str, name: str, path: str) -> None:
    try:
        os.makedirs(os.path.join(dest, name), exist_ok=True)
    except OSError as e:
        raise ArchiveError(
            f"cannot be unpacked: {e.strerror}",
            member=name,
            path=path,
            hint="a file and a folder share the name; the package is malformed",
        ) from None


def _write(stream: ChunkStream, hasher: ParallelHash, dest: str, name: str, size: int, path: str) -> str:
    """Copy one member into `dest/name`, hashing it on the way; returns its sha256 hex."""
    parent = os.path.dirname(name)
    if parent:
        _makedirs(dest, parent, path)
    try:
        fd = os.open(os.path.join(dest, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        raise ArchiveError(
            "appears twice in the package", member=name, path=path, hint="the package is malformed or hostile"
        ) from None
    except OSError as e:
        raise ArchiveError(f"cannot be unpacked: {e.strerror}", member=name, path=path) from None
    h = hashlib.sha256()

    def sink(piece: memoryview) -> None:
        def write() -> None:
            rest = piece
            while rest:
                rest = rest[os.write(fd, rest) :]

        hasher.update_while(h, piece, write)

    try:
        if stream.take(size, sink) < size:
            raise EOFError
    finally:
        os.close(fd)
    return h.hexdigest()
