"""The user cache: verification results keyed by the archive's identity, and the demo image.

The cache is the only place regtui writes to (`$XDG_CACHE_HOME/regtui`, else `~/.cache/regtui`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from typing import TYPE_CHECKING

from regtui import __version__
from regtui.oci.model import Archive, Fingerprint, Problem

if TYPE_CHECKING:
    from regtui.oci.verify import VerifyReport

CACHE_FORMAT = 1


def cache_dir(*parts: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "regtui", *parts)
    os.makedirs(path, exist_ok=True)
    return path


def archive_key(archive: Archive) -> str:
    """Identity of the archive's bytes as the file system sees them: path, size, mtime, inode, ctime, device of
    each file (a rewrite with its mtime put back still moves ctime)."""
    h = hashlib.sha256(f"{CACHE_FORMAT}|{__version__}|{os.path.realpath(archive.path)}".encode())
    prints = dict(archive.fingerprints)
    for loc in archive.blobs.values():  # a layout folder: every blob file counts
        if loc.path not in prints:
            prints[loc.path] = Fingerprint.of(loc.path)
    for path in sorted(prints):
        fp = prints[path]
        h.update(f"|{path}|{fp.size}|{fp.mtime_ns}|{fp.inode}|{fp.ctime_ns}|{fp.device}".encode())
    return h.hexdigest()


def write_atomic(path: str, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_report(archive: Archive) -> VerifyReport | None:
    from regtui.oci.verify import Check, VerifyReport

    try:
        path = os.path.join(cache_dir("verify"), archive_key(archive) + ".json")
        with open(path) as f:
            raw = json.load(f)
        report = VerifyReport(
            path=archive.path,
            checks=[Check(**c) for c in raw["checks"]],
            problems=[Problem(**p) for p in raw["problems"]],
            uncompressed_sizes=raw["uncompressed_sizes"],
            computed_diff_ids=raw.get("computed_diff_ids", {}),
            bytes_hashed=raw["bytes_hashed"],
            seconds=raw["seconds"],
            cached=True,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return report


def save_report(archive: Archive, report: VerifyReport) -> None:
    try:
        path = os.path.join(cache_dir("verify"), archive_key(archive) + ".json")
        data = dataclasses.asdict(report)
        data.pop("cached", None)
        write_atomic(path, json.dumps(data).encode())
    except OSError:
        pass  # a read-only home must not fail verification
