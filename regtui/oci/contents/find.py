"""Find: which layers touch a path or a glob, with each version's size, mode and mtime."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from regtui.oci.contents.merge import ImageFiles, Version, path_id

MAX_MATCHES = 10_000  # a glob like `*` on a million-file image would otherwise print forever
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Found:
    path: str
    versions: list[Version]  # lowest layer first
    in_image: bool  # present in the final image (a file, or a directory implied by its contents)


def is_glob(pattern: str) -> bool:
    return bool(_GLOB.search(pattern))


def find(files: ImageFiles, pattern: str, *, limit: int = MAX_MATCHES) -> tuple[list[Found], bool]:
    """Paths matching `pattern` (an exact path, or a glob: with a `/` it matches the whole path, else the last
    name, so `*.pyc` finds every .pyc). Returns (matches, truncated)."""
    if not is_glob(pattern):
        k = path_id(files, pattern)
        return ([_found(files, k)] if k >= 0 else []), False
    whole = "/" in pattern.strip("/")
    rx = re.compile(fnmatch.translate(pattern.strip("/") if whole else pattern))
    out: list[Found] = []
    for k, p in enumerate(files.paths):
        if rx.match(p if whole else p.rpartition("/")[2]):
            if len(out) >= limit:
                return out, True
            out.append(_found(files, k))
    return out, False


def _found(files: ImageFiles, k: int) -> Found:
    return Found(files.paths[k], files.versions(k), bool(files.visible[k]))
