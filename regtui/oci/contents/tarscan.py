"""A bounded push parser for tar headers: fed a decompressed layer in chunks, it reports each member's metadata
and never keeps file data (regular files get a CRC-32 of their bytes on the way past).

Hostile input never raises: the scanner records a problem and, when it cannot go on safely, stops and leaves
`complete` False. Names are normalised to relative POSIX paths; entries that climb out with `..`, whiteouts of
the root and names over `MAX_NAME` bytes are skipped (counted as problems); absolute names are made relative as
tar does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from isal import isal_zlib

BLOCK = 512
MAX_NAME = 4096  # bytes; PATH_MAX on Linux. Longer names are not a real file system's
MAX_META = 1 << 20  # a PAX or GNU long-name block larger than this is hostile: stop
MAX_ENTRIES = 2_000_000  # per layer; each costs ~60 bytes plus its path in the index
ENTRIES_ENV = "REGTUI_MAX_LAYER_ENTRIES"
MAX_PROBLEM_LINES = 20

# Entry kinds, stored as one byte in the index.
FILE, DIR, SYMLINK, HARDLINK, CHAR, BLOCKDEV, FIFO, OTHER, WHITEOUT, OPAQUE = range(10)
KIND_NAMES = ("file", "dir", "symlink", "hardlink", "char", "block", "fifo", "other", "whiteout", "opaque")
_TYPES = {
    b"0": FILE,
    b"\0": FILE,
    b"7": FILE,
    b"1": HARDLINK,
    b"2": SYMLINK,
    b"3": CHAR,
    b"4": BLOCKDEV,
    b"5": DIR,
    b"6": FIFO,
}
_NO_DATA = {HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO}  # tar stores no data after these, whatever `size` says
WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"


def max_entries() -> int:
    try:
        return max(1, int(os.environ[ENTRIES_ENV]))
    except (KeyError, ValueError):
        return MAX_ENTRIES


@dataclass
class Member:
    path: str  # normalised, relative, no trailing slash ("" is the root, only for OPAQUE)
    kind: int
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    link: str  # symlink target as stored; hardlink target normalised
    data_offset: int  # offset of the data in the decompressed stream


Sink = Callable[[Member], None]


def _octal(field: bytes) -> int:
    """A tar number field; -1 when it is not one (a corrupt or foreign header)."""
    try:
        return int(field.rstrip(b"\0 ") or b"0", 8)  # the common case: digits, then NUL or space
    except ValueError:
        pass
    if field and field[0] & 0x80:  # GNU base-256 for large numbers
        value = int.from_bytes(field[1:], "big")
        return -value if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        return -1


def _cstr(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class TarScanner:
    """Feed decompressed bytes with `feed`; `close` at the end. `on_member` is called per entry, `on_crc` with the
    CRC-32 of the last regular file's data once it has all passed."""

    def __init__(self, on_member: Sink, on_crc: Callable[[int], None] | None = None, *, limit: int | None = None):
        self.on_member = on_member
        self.on_crc = on_crc
        self.limit = limit if limit is not None else max_entries()
        self.entries = 0
        self.offset = 0  # bytes of the stream consumed so far
        self.done = False
        self.ended = False  # the end-of-archive block was seen
        self.complete = False
        self.problems: list[str] = []
        self.problem_count = 0
        self.fatal: str | None = None
        self._pending = b""
        self._skip = 0  # data bytes of the current member still to pass
        self._pad = 0
        self._crc: int | None = None
        self._meta: bytearray | None = None
        self._meta_type = b""
        self._pax: dict[str, bytes] = {}
        self._long_name: bytes | None = None
        self._long_link: bytes | None = None
        self._absolute_seen = False

    # -- problems --------------------------------------------------------------------------------------------
    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEM_LINES:
            self.problems.append(text)

    def stop(self, text: str) -> None:
        if not self.done:
            self.fatal = text
            self.problem(text)
            self.done = True

    # -- the stream ------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.done:
            self.offset += len(data)
            return
        try:
            self._feed(memoryview(data))
        except Exception as e:  # a parser bug must not take down the inflate pass; report it as the layer's
            self.stop(f"cannot read the tar at byte {self.offset}: {e}")
        self.offset += len(data)

    def _feed(self, mv: memoryview) -> None:
        pos, n = 0, len(mv)
        while pos < n and not self.done:
            if self._skip:
                take = min(self._skip, n - pos)
                part = mv[pos : pos + take]
                if self._crc is not None:
                    self._crc = isal_zlib.crc32(part, self._crc)
                elif self._meta is not None:
                    self._meta += part
                pos += take
                self._skip -= take
                if not self._skip:
                    self._data_done()
                continue
            if self._pad:
                take = min(self._pad, n - pos)
                pos += take
                self._pad -= take
                continue
            if self._pending:
                need = BLOCK - len(self._pending)
                self._pending += bytes(mv[pos : pos + need])
                pos += min(need, n - pos)
                if len(self._pending) < BLOCK:
                    return
                hdr, self._pending = self._pending, b""
            elif n - pos >= BLOCK:
                hdr = bytes(mv[pos : pos + BLOCK])
                pos += BLOCK
            else:
                self._pending = bytes(mv[pos:])
                return
            self._header(hdr, self.offset + pos)

    def close(self) -> None:
        """The stream ended: a tar that stops inside a member or without its end block is incomplete."""
        if self.done:
            self.complete = self.ended and not self.fatal
            return
        if self._skip or self._pending or self._meta is not None:
            self.stop(f"the tar ends inside a member at byte {self.offset}; the layer is truncated")
        elif not self.ended:
            # Every member was read whole; only padding or the end block is missing. Go's archive/tar reads such
            # tars without complaint (umoci 0.4 writes them), so the index is complete; say so all the same.
            if self.offset:
                self.problem(
                    f"the tar lacks its end-of-archive block after {self.offset} bytes; every member was read whole"
                )
            self.ended = True
        self.done = True
        self.complete = self.ended and not self.fatal

    # -- members ---------------------------------------------------------------------------------------------
    def _data_done(self) -> None:
        if self._crc is not None:
            if self.on_crc:
                self.on_crc(self._crc)
            self._crc = None
        if self._meta is not None:
            meta, self._meta = bytes(self._meta), None
            self._take_meta(self._meta_type, meta)

    def _header(self, hdr: bytes, data_offset: int) -> None:
        if hdr == b"\0" * BLOCK:
            self.ended = True
            self.done = True
            return
        stored = _octal(hdr[148:156])
        if stored != sum(hdr[:148]) + 256 + sum(hdr[156:]):
            self.stop(f"corrupt tar header at byte {data_offset - BLOCK} (checksum); not a tar, or damaged")
            return
        typ = hdr[156:157]
        size = _octal(hdr[124:136])
        if size < 0:
            self.stop(f"negative member size at byte {data_offset - BLOCK}; the tar is corrupt")
            return
        if "size" in self._pax:
            try:
                size = int(self._pax["size"])
            except ValueError:
                self.stop(f"PAX size is not a number at byte {data_offset - BLOCK}")
                return
        padded = -size % BLOCK
        if typ in (b"x", b"g", b"L", b"K"):
            if size > MAX_META:
                self.stop(
                    f"a {size}-byte tar metadata block at byte {data_offset - BLOCK} (over {MAX_META}); "
                    "hostile or corrupt, not read further"
                )
                return
            self._meta, self._meta_type = bytearray(), typ
            self._skip, self._pad = size, padded
            if not size:
                self._data_done()
            return
        kind = _TYPES.get(typ, OTHER)
        has_data = kind not in _NO_DATA
        self._skip, self._pad = (size, padded) if has_data else (0, 0)
        pax, self._pax = self._pax, {}
        long_name, self._long_name = self._long_name, None
        long_link, self._long_link = self._long_link, None
        raw = pax.get("path") or long_name
        if raw is None:
            raw = _cstr(hdr[0:100])
            if hdr[257:263] == b"ustar\0" and hdr[345:500].strip(b"\0"):  # POSIX ustar prefix (not GNU)
                raw = _cstr(hdr[345:500]) + b"/" + raw
        link = pax.get("linkpath") or long_link or _cstr(hdr[157:257])
        member = self._member(raw, link, kind, hdr, pax, size if has_data else 0, data_offset)
        if member is not None:
            if self.entries >= self.limit:
                self.stop(
                    f"more than {self.limit} entries in one layer; indexed the first {self.limit} "
                    f"(set {ENTRIES_ENV} higher to index more)"
                )
                return
            self.entries += 1
            self.on_member(member)
        if kind == FILE and member is not None and member.kind == FILE:
            self._crc = 0
            if not size:
                self._data_done()

    def _member(
        self, raw: bytes, link: bytes, kind: int, hdr: bytes, pax: dict[str, bytes], size: int, data_offset: int
    ) -> Member | None:
        where = f"at byte {data_offset - BLOCK}"
        if len(raw) > MAX_NAME or len(link) > MAX_NAME:
            self.problem(f"a name of {max(len(raw), len(link))} bytes {where} (over {MAX_NAME}); entry skipped")
            return None
        path = _decode(raw)
        if path.startswith("/") and path.strip("/") and not self._absolute_seen:  # "/" alone: the root entry
            self.problem(f"absolute name {path[:80]!r} {where}; made relative, as tar does")
            self._absolute_seen = True
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            self.problem(f"name {path[:80]!r} {where} climbs out with '..'; entry skipped")
            return None
        base = parts[-1] if parts else ""
        if base.startswith(WH_PREFIX):
            parent = parts[:-1]
            if base == WH_OPAQUE:
                kind, target = OPAQUE, parent
            elif base.startswith(WH_PREFIX + WH_PREFIX):
                return None  # AUFS bookkeeping (.wh..wh.plnk ...), not content; dive skips it too
            else:
                name = base[len(WH_PREFIX) :]
                if name in ("", ".", ".."):
                    self.problem(f"whiteout {path[:80]!r} {where} would delete the root; entry skipped")
                    return None
                kind, target = WHITEOUT, parent + [name]
            return Member("/".join(target), kind, 0, 0, 0, 0, 0, "", data_offset)
        if not parts:
            return None  # the root directory itself ("./")
        link_text = _decode(link)
        if kind == HARDLINK:
            lparts = [p for p in link_text.split("/") if p not in ("", ".")]
            if ".." in lparts:
                self.problem(f"hard link {path[:80]!r} {where} points out with '..'; entry skipped")
                return None
            link_text = "/".join(lparts)
        return Member(
            "/".join(parts),
            kind,
            _octal(hdr[100:108]) & 0o7777,
            _num(pax, "uid", hdr[108:116]),
            _num(pax, "gid", hdr[116:124]),
            size,
            _mtime(pax, hdr[136:148]),
            link_text,
            data_offset,
        )

    def _take_meta(self, typ: bytes, meta: bytes) -> None:
        if typ == b"L":
            self._long_name = _cstr(meta)
        elif typ == b"K":
            self._long_link = _cstr(meta)
        elif typ == b"x":
            self._pax = _pax_records(meta)
        # b"g": global PAX headers carry defaults no image tool relies on; ignored (bounded above)


def _num(pax: dict[str, bytes], key: str, field: bytes) -> int:
    try:
        value = int(pax[key]) if key in pax else _octal(field)
    except ValueError:
        value = 0
    return min(max(value, 0), 0xFFFFFFFF)


def _mtime(pax: dict[str, bytes], field: bytes) -> int:
    try:
        value = int(float(pax["mtime"])) if "mtime" in pax else _octal(field)
    except (ValueError, OverflowError):
        value = 0
    return min(max(value, -(1 << 62)), 1 << 62)


def _pax_records(meta: bytes) -> dict[str, bytes]:
    """`<len> <key>=<value>\\n` records; malformed ones end the parse (what was read so far is kept)."""
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(meta):
        sp = meta.find(b" ", pos, pos + 20)
        if sp < 0:
            break
        try:
            length = int(meta[pos:sp])
        except ValueError:
            break
        if length <= sp - pos or pos + length > len(meta):
            break
        record = meta[sp + 1 : pos + length - 1]
        key, eq, value = record.partition(b"=")
        if eq and key in (b"path", b"linkpath", b"size", b"uid", b"gid", b"mtime"):
            out[key.decode()] = value
        pos += length
    return out
