"""Which form a package path is in, and the raw byte stream of the compressed forms.

A split package's parts are read in order as one stream: their count and sizes are checked against
`.part000` before a byte is decompressed, and the sha256 of everything read against it at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from regtui.oci.errors import ArchiveError
from regtui.oci.model import Fingerprint

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SPLIT_SUFFIX = ".part000"
MAX_PARTS = 999  # Zarf refuses to split into 1000 files or more
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class UnpackProgress:
    """How far unpacking a compressed package has got."""

    read: int  # compressed bytes read
    total: int  # compressed bytes in all
    written: int  # bytes written into the cache
    seconds: float
    member: str = ""  # the file being written
    waiting: bool = False  # another regtui holds the lock and is unpacking the same package

    @property
    def speed(self) -> float:
        """Compressed bytes per second."""
        return self.read / self.seconds if self.seconds > 0 else 0.0


ProgressFn = Callable[[UnpackProgress], None]


def compressed_form(path: str) -> str | None:
    """ "split" for a `.part000`, "tar.zst" for a zstd file, None for anything read in place."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if path.endswith(SPLIT_SUFFIX):
        return "split"
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return None
    return "tar.zst" if head == ZSTD_MAGIC else None


@dataclass(frozen=True)
class SplitInfo:
    sha256: str
    size: int
    parts: tuple[str, ...]


def read_split(part0: str) -> SplitInfo:
    """Parse `.part000` and check the data parts exist with the sizes it promises."""
    try:
        with open(part0, "rb") as f:
            raw = f.read(4097)
    except OSError as e:
        raise ArchiveError(f"cannot be read: {e.strerror}", path=part0) from None
    try:
        obj = json.loads(raw) if len(raw) <= 4096 else None
    except ValueError:
        obj = None
    # Go's encoding/json matches keys case-insensitively: older Zarf writes Sha256Sum, newer sha256Sum.
    fields = {k.lower(): v for k, v in obj.items()} if isinstance(obj, dict) else {}
    sha, size, count = fields.get("sha256sum"), fields.get("bytes"), fields.get("count")
    ok = (
        isinstance(sha, str)
        and _HEX64.match(sha)
        and isinstance(size, int)
        and not isinstance(size, bool)
        and size >= 0
        and isinstance(count, int)
        and not isinstance(count, bool)
        and 1 <= count <= MAX_PARTS
    )
    if not ok or not isinstance(sha, str) or not isinstance(size, int) or not isinstance(count, int):
        raise ArchiveError(
            'is not a split package header (JSON {"Sha256Sum", "Bytes", "Count"})',
            path=part0,
            hint="give the .part000 file zarf package create wrote",
        )
    base = part0[: -len(SPLIT_SUFFIX)]
    parts = tuple(f"{base}.part{i:03d}" for i in range(1, count + 1))
    have = 0
    for p in parts:
        try:
            have += os.stat(p).st_size
        except OSError:
            raise ArchiveError(
                f"part {os.path.basename(p)} is missing ({count} parts expected)",
                path=part0,
                hint="copy every part of the package next to the .part000",
            ) from None
    extra = f"{base}.part{count + 1:03d}"
    if os.path.exists(extra):
        raise ArchiveError(
            f"{os.path.basename(extra)} exists but .part000 says {count} parts",
            path=part0,
            hint="parts of two packages are mixed; keep one package's parts together",
        )
    if have != size:
        why = "a part is truncated or missing bytes" if have < size else "a part has extra bytes"
        raise ArchiveError(
            f"the parts hold {have} bytes, .part000 says {size}", path=part0, hint=f"{why}; copy the parts again"
        )
    return SplitInfo(sha, size, parts)


class PartsReader(io.RawIOBase):
    """Several files read in order as one stream, hashed and counted on the way."""

    def __init__(self, paths: tuple[str, ...] | list[str], hashed: bool = True):
        self.paths = list(paths)
        self.hashed = hashed  # only a split package has a whole-file checksum to check
        self.index = 0
        self.file: io.BufferedReader | None = None
        self.count = 0
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while self.index < len(self.paths):
            if self.file is None:
                self.file = open(self.paths[self.index], "rb")  # noqa: SIM115 - closed below
            n = self.file.readinto(buf)
            if n:
                if self.hashed:
                    self.hash.update(memoryview(buf)[:n])
                self.count += n
                return n
            self.file.close()
            self.file = None
            self.index += 1
        return 0

    def drain(self) -> None:
        """Read what is left (bytes after the tar's end), so the hash covers the whole file."""
        buf = bytearray(1 << 20)
        while self.readinto(buf):
            pass

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        super().close()


def source_parts(path: str, form: str) -> tuple[list[str], SplitInfo | None]:
    if form == "split":
        info = read_split(path)
        return list(info.parts), info
    return [path], None


def identity(path: str, parts: list[str]) -> str:
    """The cache key: the package files' real path, device, inode, size and mtime."""
    h = hashlib.sha256(os.path.realpath(path).encode())
    for p in [path, *parts]:
        st = os.stat(p)
        fp = Fingerprint(st.st_size, st.st_mtime_ns, st.st_ino)
        h.update(f"|{st.st_dev}|{fp.inode}|{fp.size}|{fp.mtime_ns}".encode())
    return h.hexdigest()[:32]
