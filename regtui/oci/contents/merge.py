"""Apply an image's layers in order (OCI image spec, "Applying Changesets") and mark every entry.

All paths any layer names, plus their parent directories, sit in one table sorted depth-first (a directory is
followed by its whole subtree, so "everything under X" is the range `k+1 .. end[k]`). The state after a layer is
one array: for each path, the (layer, entry) whose version is present, or -1. A whiteout clears the path and its
range, an opaque directory clears its range, a non-directory written over a directory clears the range; removals
of a layer apply to lower layers only, before its own writes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass

from regtui.oci.contents.index import LayerIndex
from regtui.oci.contents.tarscan import DIR, KIND_NAMES, OPAQUE, WHITEOUT
from regtui.oci.model import Layer

UNCHANGED, ADDED, MODIFIED, REMOVED, NOOP = range(5)
MARK_NAMES = ("unchanged", "added", "modified", "removed", "no-op")
ROOT = 0xFFFFFFFF  # the path id of an opaque whiteout at the layer's root
NONE = -1


def pack(layer: int, entry: int) -> int:
    return (layer << 32) | entry


def unpack(ref: int) -> tuple[int, int]:
    return ref >> 32, ref & 0xFFFFFFFF


@dataclass(frozen=True)
class Version:
    """One layer's entry for a path."""

    layer: int
    entry: int
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: int
    link: str
    mark: str


class ImageFiles:
    """The merged file system of one image: per-layer indexes, marks, and the path table they share."""

    def __init__(self, layers: list[LayerIndex], sources: list[Layer] | None = None):
        self.layers = layers
        self.sources = sources or []  # the model's layers, to read file contents from
        names = [[idx.path(j) for j in range(len(idx))] for idx in layers]
        self.paths = _all_paths(names)
        self.id_of = {p: k for k, p in enumerate(self.paths)}
        self.end, self.parent = _ranges(self.paths)
        self.ids: list[array[int]] = []
        self.by_path: list[tuple[array[int], array[int]]] = []  # per layer: path ids ascending, and their entries
        id_of = self.id_of
        for layer_names in names:
            ids = array("I", (id_of[p] if p else ROOT for p in layer_names))
            self.ids.append(ids)
            order = sorted(range(len(ids)), key=ids.__getitem__)
            self.by_path.append((array("I", (ids[j] for j in order)), array("I", order)))
        self.marks: list[bytearray] = []
        present = array("q", [NONE]) * len(self.paths)
        for i in range(len(layers)):
            self.marks.append(self._mark(present, i))
            self.apply_layer(present, i)
        self.present = present
        self.visible = self._visible(present)

    @property
    def complete(self) -> bool:
        return all(idx.complete for idx in self.layers)

    def __len__(self) -> int:
        return len(self.paths)

    # -- replaying layers ------------------------------------------------------------------------------------
    def _has_present(self, present: array[int], a: int, b: int) -> bool:
        return b > a and present[a:b].count(NONE) != b - a

    def _mark(self, present: array[int], i: int) -> bytearray:
        idx, ids = self.layers[i], self.ids[i]
        marks = bytearray(len(ids))
        n = len(self.paths)
        for j, k in enumerate(ids):
            kind = idx.kind[j]
            if kind == WHITEOUT:
                hit = present[k] != NONE or self._has_present(present, k + 1, self.end[k])
                marks[j] = REMOVED if hit else NOOP
            elif kind == OPAQUE:
                a, b = (0, n) if k == ROOT else (k + 1, self.end[k])
                marks[j] = REMOVED if self._has_present(present, a, b) else NOOP
            elif (ref := present[k]) == NONE:
                # A directory that lower layers only implied (by files under it) existed already: dive says modified.
                implied = kind == DIR and self._has_present(present, k + 1, self.end[k])
                marks[j] = MODIFIED if implied else ADDED
            else:
                marks[j] = UNCHANGED if _same(self.layers, ref, idx, j) else MODIFIED
        return marks

    def apply_layer(self, present: array[int], i: int) -> None:
        idx, ids = self.layers[i], self.ids[i]
        n = len(self.paths)
        for j, k in enumerate(ids):  # removals first: they apply to the layers below
            kind = idx.kind[j]
            if kind == WHITEOUT:
                _clear(present, k, self.end[k])
            elif kind == OPAQUE:
                _clear(present, *((0, n) if k == ROOT else (k + 1, self.end[k])))
            elif kind != DIR and self.end[k] > k + 1:
                _clear(present, k + 1, self.end[k])  # a file replacing a directory replaces its contents too
        for j, k in enumerate(ids):
            if idx.kind[j] not in (WHITEOUT, OPAQUE):
                present[k] = pack(i, j)

    def _visible(self, present: array[int]) -> bytearray:
        vis = bytearray(len(self.paths))
        for k, ref in enumerate(present):
            if ref != NONE:
                while k != NONE and not vis[k]:
                    vis[k] = 1
                    k = self.parent[k]
        return vis

    def state_after(self, layer: int) -> array[int]:
        """The present array after applying layers 0..layer."""
        if layer >= len(self.layers) - 1:
            return self.present
        present = array("q", [NONE]) * len(self.paths)
        for i in range(layer + 1):
            self.apply_layer(present, i)
        return present

    # -- questions -------------------------------------------------------------------------------------------
    def entry_in(self, layer: int, k: int) -> int:
        """The last entry of `layer` for path id `k`, or -1."""
        keys, entries = self.by_path[layer]
        pos = bisect_left(keys, k + 1) - 1
        return entries[pos] if pos >= 0 and keys[pos] == k else -1

    def version(self, layer: int, j: int) -> Version:
        idx = self.layers[layer]
        return Version(
            layer,
            j,
            KIND_NAMES[idx.kind[j]],
            idx.size[j],
            idx.mode[j],
            idx.uid[j],
            idx.gid[j],
            idx.mtime[j],
            idx.link(j),
            MARK_NAMES[self.marks[layer][j]],
        )

    def versions(self, k: int) -> list[Version]:
        """Every layer's entry for path id `k`, lowest layer first."""
        out = []
        for i in range(len(self.layers)):
            j = self.entry_in(i, k)
            if j >= 0:
                out.append(self.version(i, j))
        return out

    def visible_version(self, k: int) -> Version | None:
        ref = self.present[k]
        return None if ref == NONE else self.version(*unpack(ref))

    def counts(self, layer: int) -> dict[str, int]:
        """How many entries of `layer` add, modify, remove or leave paths unchanged."""
        out = dict.fromkeys(MARK_NAMES, 0)
        for m in self.marks[layer]:
            out[MARK_NAMES[m]] += 1
        return out

    def hidden_bytes(self) -> int:
        """Bytes stored in the layers that the final image does not show (overwritten, deleted, hidden)."""
        shown = set(self.present)
        return sum(idx.size[j] for i, idx in enumerate(self.layers) for j in range(len(idx)) if pack(i, j) not in shown)


def _same(layers: list[LayerIndex], ref: int, idx: LayerIndex, j: int) -> bool:
    """dive's test for "unmodified": same type, content hash, mode, uid and gid (and here: link target)."""
    li, lj = unpack(ref)
    low = layers[li]
    return (
        low.kind[lj] == idx.kind[j]
        and low.crc[lj] == idx.crc[j]
        and low.size[lj] == idx.size[j]
        and low.mode[lj] == idx.mode[j]
        and low.uid[lj] == idx.uid[j]
        and low.gid[lj] == idx.gid[j]
        and low.link(lj) == idx.link(j)
    )


def _clear(present: array[int], a: int, b: int) -> None:
    if b > a:
        present[a:b] = array("q", [NONE]) * (b - a)


def _all_paths(names: list[list[str]]) -> list[str]:
    seen: set[str] = set()
    for layer_names in names:
        for p in layer_names:
            while p and p not in seen:
                seen.add(p)
                p = p.rpartition("/")[0]
    # "/" sorts as NUL so that a directory is followed directly by its subtree (NUL cannot be in a tar name).
    return sorted(seen, key=lambda p: p.replace("/", "\0"))


def _ranges(paths: list[str]) -> tuple[array[int], array[int]]:
    n = len(paths)
    end = array("I", [n]) * n
    parent = array("i", [NONE]) * n
    stack: list[int] = []
    for k, p in enumerate(paths):
        while stack and not p.startswith(paths[stack[-1]] + "/"):
            end[stack.pop()] = k
        if stack:
            parent[k] = stack[-1]
        stack.append(k)
    return end, parent


def path_id(files: ImageFiles, path: str) -> int:
    """The id of a path given as a user writes it (`/etc/passwd`, `etc/passwd/`), or -1."""
    norm = "/".join(p for p in path.split("/") if p not in ("", "."))
    return files.id_of.get(norm, -1)
