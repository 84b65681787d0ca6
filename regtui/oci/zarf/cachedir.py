"""What the unpack cache holds, and pruning it (`regtui cache`).

An entry is a finished folder `<key>/` with its marker `<key>.json` (source, form, sizes; its mtime is the
last use). Pruning takes each entry's lock without waiting, so a package another regtui is unpacking or
has just opened is skipped rather than pulled from under it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass

from regtui.oci.zarf.unpack import MARKER_SUFFIX, package_lock, zarf_cache_root


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: str
    source: str  # the package file it was unpacked from
    form: str
    bytes: int  # bytes on disk
    created: float
    last_used: float
    source_exists: bool


def _disk_bytes(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


def cache_entries() -> list[CacheEntry]:
    root = zarf_cache_root()
    out = []
    for name in sorted(os.listdir(root)):
        if not name.endswith(MARKER_SUFFIX):
            continue
        key = name[: -len(MARKER_SUFFIX)]
        marker = os.path.join(root, name)
        try:
            with open(marker) as f:
                meta = json.load(f)
            used = os.stat(marker).st_mtime
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict):
            continue
        source = str(meta.get("source", ""))
        folder = os.path.join(root, key)
        out.append(
            CacheEntry(
                key,
                folder,
                source,
                str(meta.get("form", "")),
                _disk_bytes(folder),
                float(meta.get("created", used)),
                used,
                os.path.exists(source),
            )
        )
    return out


def prune(older_than: float | None = None, everything: bool = False) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Remove entries unused for `older_than` seconds (or all); returns (removed, skipped because in use)."""
    root = zarf_cache_root()
    now = time.time()
    removed, busy = [], []
    for e in cache_entries():
        if not everything and (older_than is None or now - e.last_used < older_than):
            continue
        with package_lock(root, e.key, blocking=False) as mine:
            if not mine:
                busy.append(e)
                continue
            os.unlink(os.path.join(root, e.key + MARKER_SUFFIX))  # first: the folder is no longer "complete"
            shutil.rmtree(e.path, ignore_errors=True)
            os.unlink(os.path.join(root, e.key + ".lock"))
        removed.append(e)
    if everything:  # folders a regtui that died left half-written, when nobody holds their lock
        for name in os.listdir(root):
            if name.startswith(".tmp-"):
                key = name[len(".tmp-") :].split("-")[0]
                with package_lock(root, key, blocking=False) as mine:
                    if mine:
                        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return removed, busy
