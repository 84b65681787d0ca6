"""Read-only access to the files of an archive without extracting it.

`TarStore` scans the tar headers once and keeps (offset, size) per member; `DirStore` serves an OCI layout
folder. Both resolve names strictly inside the archive: `..`, absolute names and links that leave it are refused.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
import tarfile
from itertools import accumulate
from typing import Any

from regtui.oci.errors import ArchiveError
from regtui.oci.model import Fingerprint, Location

MAX_JSON = 16 * 1024 * 1024  # manifests, indexes and configs are small; anything larger is hostile or broken
MAX_JSON_DEPTH = 64
MAX_LINK_HOPS = 16
# Each member costs its index entry in memory; image archives hold hundreds to a few thousand. A tar of
# millions of empty members would make memory grow with the file instead of with its images.
MAX_MEMBERS = 100_000


def _clean(name: str, *, path: str) -> str:
    """A member name normalised to a relative POSIX path; refuses names that leave the archive."""
    raw = name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(
            "absolute member name; refusing the archive",
            member=raw,
            path=path,
            hint="archives must only hold relative names",
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(
            "member name climbs out of the archive with '..'; refusing the archive",
            member=raw,
            path=path,
            hint="the archive is malformed or hostile",
        )
    return "/".join(parts)


class Store:
    path: str
    kind: str

    def names(self) -> list[str]:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def locate(self, name: str) -> Location:
        raise NotImplementedError

    def fingerprints(self) -> dict[str, Fingerprint]:
        raise NotImplementedError

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        loc = self.locate(name)
        if loc.size > limit:
            raise ArchiveError(
                f"is {loc.size} bytes, more than the {limit} bytes allowed for metadata",
                member=name,
                path=self.path,
                hint="the archive is malformed or hostile",
            )
        return read_exact(loc)

    def read_json(self, name: str, limit: int = MAX_JSON) -> Any:
        return parse_json(self.read(name, limit), member=name, path=self.path)


def parse_json(data: bytes, *, member: str, path: str) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArchiveError(f"is not UTF-8 JSON (byte {e.start})", member=member, path=path) from None
    if depth_exceeds(data, MAX_JSON_DEPTH):
        raise ArchiveError(
            f"JSON nests deeper than {MAX_JSON_DEPTH} levels",
            member=member,
            path=path,
            hint="the archive is malformed or hostile",
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ArchiveError(
            f"is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", member=member, path=path
        ) from None
    except RecursionError:
        raise ArchiveError("JSON nests too deeply", member=member, path=path) from None


# A JSON string (escapes included); unrolled so that re runs over the text in C, not one alternation per byte.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_ONLY_BRACKETS = (bytes.maketrans(b"{}", b"[]"), bytes(set(range(256)) - set(b"[]{}")))
_DELTA = {ord("["): 1, ord("]"): -1}


def depth_exceeds(text: str | bytes, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit`: a bound, not a parser (json.loads recurses
    once per level, and so would code walking what it returns). Counting starts at 0 and closes count down.

    No Python loop per byte: strings are cut out by a regex, the rest reduced to its brackets by translate, then
    innermost pairs `[]` are removed a pass at a time. After k passes that leave only `]]..[[`, the true depth
    lies between that rest's depth and it plus k (equal when the brackets balance, as in any valid JSON); a
    run of more than `limit` opens in any pass decides at once. 16 MiB take tens to hundreds of milliseconds
    (tests/test_json_depth.py measures it); only crafted unbalanced brackets fall back to a count per byte."""
    data = text.encode() if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b"\\" in data:
        bare = _JSON_STRING.sub(b"", data)
        quote = bare.find(b'"')
        if quote >= 0:
            bare = bare[:quote]  # an unterminated string runs to the end: nothing after it counts
    else:  # no escapes: strings are what lies between quotes 1-2, 3-4, ... (and after an odd last one)
        bare = b"".join(data.split(b'"')[0::2])
    brackets = bare.translate(*_ONLY_BRACKETS)
    rest = brackets
    run = b"[" * (limit + 1)
    for passes in range(limit + 2):
        deep = rest.find(run)  # opens in a row, from a count not below 0: deeper than the limit here already
        if deep >= 0 and rest.count(b"[", 0, deep) >= rest.count(b"]", 0, deep):
            return True
        shorter = rest.replace(b"[]", b"")
        if len(shorter) == len(rest):  # no pair left: `]` * closes + `[` * opens
            closes = rest.count(b"]")
            low = max(0, len(rest) - 2 * closes)
            if low + passes <= limit:
                return False
            if low > limit:
                return True
            break
        rest = shorter
    # Crafted unbalanced brackets (invalid JSON anyway): the exact running count, as slow as a loop per byte.
    return max(accumulate(map(_DELTA.__getitem__, brackets))) > limit


def read_exact(loc: Location) -> bytes:
    fd = os.open(loc.path, os.O_RDONLY)
    try:
        data = os.pread(fd, loc.size, loc.offset)
    finally:
        os.close(fd)
    if len(data) != loc.size:
        raise ArchiveError(
            f"ends after {len(data)} of {loc.size} bytes; the file is truncated or changed",
            member=loc.member or None,
            path=loc.path,
        )
    return data


class TarStore(Store):
    kind = "tar"

    def __init__(self, path: str):
        self.path = path
        self._members: dict[str, tarfile.TarInfo] = {}
        self.duplicates: list[str] = []
        self._fingerprint = Fingerprint.of(path)
        self._scan()

    def _scan(self) -> None:
        size = self._fingerprint.size
        with open(self.path, "rb") as f:
            head = f.read(512)
        if head[:2] == b"\x1f\x8b" or head[:4] == b"\x28\xb5\x2f\xfd":
            raise ArchiveError(
                "the archive itself is compressed; regtui reads blobs in place from a plain tar",
                path=self.path,
                hint="decompress it first, e.g. gunzip or zstd -d",
            )
        if len(head) < 512:
            raise ArchiveError("is not a tar archive (shorter than one tar header)", path=self.path)
        try:
            with tarfile.open(self.path, mode="r:") as tf:
                for count, info in enumerate(tf, 1):
                    if count > MAX_MEMBERS:
                        raise ArchiveError(
                            f"holds more than {MAX_MEMBERS} members; refused",
                            path=self.path,
                            hint="no image archive needs that many; it is malformed or hostile",
                        )
                    name = _clean(info.name, path=self.path)
                    if not name:
                        continue
                    if info.isreg() and info.offset_data + info.size > size:
                        raise ArchiveError(
                            f"is cut off: needs bytes up to {info.offset_data + info.size} but the file has {size}",
                            member=info.name,
                            path=self.path,
                            hint="the archive is truncated; copy it again",
                        )
                    if name in self._members and not self._members[name].isdir():
                        self.duplicates.append(name)
                    self._members[name] = info
                end = tf.offset
        except ArchiveError:
            raise
        except tarfile.ReadError as e:
            if not self._members:
                raise ArchiveError(
                    f"is not a tar archive ({e})",
                    path=self.path,
                    hint="give a docker save / crane / OCI archive, or an OCI layout folder",
                ) from None
            raise ArchiveError(
                f"is damaged after member {list(self._members)[-1]!r}: {e}",
                path=self.path,
                hint="the archive is truncated or corrupt",
            ) from None
        except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError) as e:
            raise ArchiveError(f"cannot be read as tar: {e}", path=self.path) from None
        # tarfile silently stops at a damaged or cut header after the first member; only zeros (tar's end
        # marker) or nothing may follow the last member.
        with open(self.path, "rb") as f:
            f.seek(end)
            block = f.read(512)
        self.terminated = bool(block)
        if block.strip(b"\0"):
            last = list(self._members)[-1] if self._members else None
            after = f" after member {last!r}" if last else ""
            raise ArchiveError(
                f"has a damaged or cut tar header at byte {end}{after}",
                path=self.path,
                hint="the archive is truncated or corrupt; copy it again",
            )

    def _resolve(self, name: str) -> tarfile.TarInfo:
        seen = 0
        current = name
        while True:
            info = self._members.get(current)
            if info is None:
                raise ArchiveError(
                    "is missing from the archive",
                    member=current,
                    path=self.path,
                    hint="the archive is incomplete" if current == name else f"link target of {name!r}",
                )
            if info.issym() or info.islnk():
                seen += 1
                if seen > MAX_LINK_HOPS:
                    raise ArchiveError("link loop", member=name, path=self.path)
                target = info.linkname
                if info.issym() and not target.startswith("/"):
                    target = posixpath.join(posixpath.dirname(current), target)
                target = posixpath.normpath(target)
                if target.startswith("/") or target == ".." or target.startswith("../"):
                    raise ArchiveError(
                        f"link points outside the archive ({info.linkname!r}); refused",
                        member=current,
                        path=self.path,
                        hint="the archive is malformed or hostile",
                    )
                current = target
                continue
            if not info.isreg():
                raise ArchiveError("is not a regular file", member=current, path=self.path)
            return info

    def names(self) -> list[str]:
        return list(self._members)

    def has(self, name: str) -> bool:
        return name in self._members

    def locate(self, name: str) -> Location:
        info = self._resolve(name)
        return Location(self.path, info.offset_data, info.size, member=name)

    def fingerprints(self) -> dict[str, Fingerprint]:
        return {self.path: self._fingerprint}


class DirStore(Store):
    kind = "dir"

    def __init__(self, path: str):
        self.path = path
        self._root = os.path.realpath(path)
        self._prints: dict[str, Fingerprint] = {}
        self._dirs: dict[str, str] = {}  # folder inside the layout -> its real path (resolved once)

    def _full(self, name: str) -> str:
        clean = _clean(name, path=self.path)
        # realpath() lstat()s every component; a layout of thousands of blobs asks for the same few folders,
        # so each folder is resolved once and only the last component is checked per name.
        parent, _, leaf = clean.rpartition("/")
        real_parent = self._dirs.get(parent)
        if real_parent is None:
            real_parent = self._dirs[parent] = os.path.realpath(os.path.join(self._root, parent))
        full = os.path.join(real_parent, leaf) if leaf else real_parent
        if os.path.islink(full):
            full = os.path.realpath(full)
        if full != self._root and not full.startswith(self._root + os.sep):
            raise ArchiveError(
                "resolves outside the layout folder; refused",
                member=name,
                path=self.path,
                hint="a symlink in the layout points elsewhere",
            )
        return full

    def names(self) -> list[str]:
        out = []
        for dirpath, _dirs, files in os.walk(self._root):
            for f in files:
                out.append(os.path.relpath(os.path.join(dirpath, f), self._root).replace(os.sep, "/"))
        return out

    def has(self, name: str) -> bool:
        # Present as any kind of entry: locate() then says why it cannot be read (a folder, a link that
        # leaves the layout) instead of the name looking merely absent.
        if not os.path.lexists(os.path.join(self._root, _clean(name, path=self.path))):
            return False
        self._full(name)
        return True

    def locate(self, name: str) -> Location:
        full = self._full(name)
        try:
            st = os.stat(full)
        except FileNotFoundError:
            raise ArchiveError(
                "is missing from the layout", member=name, path=self.path, hint="the layout is incomplete"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError("is not a regular file", member=name, path=self.path)
        self._prints[full] = Fingerprint.of_stat(st)
        return Location(full, 0, st.st_size, member=name)

    def fingerprints(self) -> dict[str, Fingerprint]:
        return dict(self._prints)


class SubStore(Store):
    """The files under one folder of another store, by their names relative to it (a Zarf package's
    `images/` layout inside the package tar)."""

    def __init__(self, inner: Store, prefix: str):
        self.inner = inner
        self.prefix = prefix.rstrip("/") + "/"
        self.path = inner.path
        self.kind = inner.kind

    def names(self) -> list[str]:
        n = len(self.prefix)
        return [name[n:] for name in self.inner.names() if name.startswith(self.prefix)]

    def has(self, name: str) -> bool:
        return self.inner.has(self.prefix + _clean(name, path=self.path))

    def locate(self, name: str) -> Location:
        return self.inner.locate(self.prefix + _clean(name, path=self.path))

    def fingerprints(self) -> dict[str, Fingerprint]:
        return self.inner.fingerprints()


def open_store(path: str) -> Store:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ArchiveError("no such file or folder", path=path) from None
    except OSError as e:
        raise ArchiveError(f"cannot be read: {e.strerror}", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        return DirStore(path)
    if not stat.S_ISREG(st.st_mode):
        raise ArchiveError("is not a regular file or folder", path=path)
    try:
        return TarStore(path)
    except PermissionError:
        raise ArchiveError("permission denied", path=path) from None
