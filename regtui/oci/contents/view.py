"""A tree to show: the final image, or the image as of one layer with that layer's changes marked (as dive shows
a selected layer). Children are found on demand from the depth-first path table, so a UI can expand lazily over
hundreds of thousands of paths; directory sizes are summed once per view."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from regtui.oci.contents.merge import (
    ADDED,
    MARK_NAMES,
    MODIFIED,
    NONE,
    REMOVED,
    ImageFiles,
    pack,
    unpack,
)
from regtui.oci.contents.tarscan import DIR, KIND_NAMES

NO_PARENT = -1


@dataclass(frozen=True)
class Row:
    id: int
    path: str
    name: str
    kind: str  # "dir" also for a directory only implied by what is under it
    mode: int
    uid: int
    gid: int
    size: int  # a directory: what is under it (removed contents only when it is removed itself)
    mtime: int
    link: str
    mark: str
    layer: int  # the layer whose entry this is (-1: implied directory)
    has_children: bool


class FileView:
    def __init__(self, files: ImageFiles, layer: int | None = None, *, changes_only: bool = False, text: str = ""):
        self.files, self.layer, self.changes_only, self.text = files, layer, changes_only, text
        n = len(files.paths)
        self.ref = array("q", [NONE]) * n
        self.mark = bytearray(n)
        self.mask = bytearray(n)
        if layer is None:
            after = files.present
            for k, r in enumerate(after):
                if r != NONE:
                    self.ref[k] = r
                    li, lj = unpack(r)
                    self.mark[k] = files.marks[li][lj]
        else:
            after = files.state_after(layer)
            before = files.state_after(layer - 1) if layer > 0 else array("q", [NONE]) * n
            for k in range(n):
                if after[k] != NONE:
                    self.ref[k] = after[k]
                elif before[k] != NONE:
                    self.ref[k], self.mark[k] = before[k], REMOVED
            for j, k in enumerate(files.ids[layer]):
                if k < n and after[k] == pack(layer, j):
                    self.mark[k] = files.marks[layer][j]
        wanted = self._wanted(layer, changes_only, text)
        for k in range(n):
            if self.ref[k] != NONE and wanted(k):
                while k != NO_PARENT and not self.mask[k]:
                    self.mask[k] = 1
                    k = files.parent[k]
        self.total = self._totals()

    def _wanted(self, layer: int | None, changes_only: bool, text: str) -> Callable[[int], bool]:
        paths, mark = self.files.paths, self.mark
        needle = text.lower()
        if layer is not None and changes_only:
            if needle:
                return lambda k: mark[k] in (ADDED, MODIFIED, REMOVED) and needle in paths[k].lower()
            return lambda k: mark[k] in (ADDED, MODIFIED, REMOVED)
        if needle:
            return lambda k: needle in paths[k].lower()
        return lambda k: True

    def _totals(self) -> array[int]:
        files, n = self.files, len(self.files.paths)
        total = array("Q", [0]) * n
        for k in range(n - 1, -1, -1):
            if not self.mask[k]:
                continue
            r = self.ref[k]
            if r != NONE:
                li, lj = unpack(r)
                total[k] += files.layers[li].size[lj]
            p = files.parent[k]
            if p != NO_PARENT and (self.mark[k] != REMOVED or self.mark[p] == REMOVED):
                total[p] += total[k]
        return total

    def __len__(self) -> int:
        return sum(self.mask)

    def children(self, k: int = NO_PARENT, *, by_size: bool = False) -> list[int]:
        end, mask = self.files.end, self.mask
        c, stop = (0, len(mask)) if k == NO_PARENT else (k + 1, end[k])
        out = []
        while c < stop:
            if mask[c]:
                out.append(c)
            c = end[c]
        if by_size:
            out.sort(key=lambda i: -self.total[i])
        return out

    def has_children(self, k: int) -> bool:
        end, mask = self.files.end, self.mask
        c = k + 1
        while c < end[k]:
            if mask[c]:
                return True
            c = end[c]
        return False

    def row(self, k: int) -> Row:
        files = self.files
        path = files.paths[k]
        r = self.ref[k]
        kids = self.has_children(k)
        if r == NONE:  # a directory no layer wrote, implied by its contents
            return Row(
                k,
                path,
                path.rpartition("/")[2],
                "dir",
                0o755,
                0,
                0,
                self.total[k],
                0,
                "",
                MARK_NAMES[self.mark[k]],
                -1,
                kids,
            )
        li, lj = unpack(r)
        idx = files.layers[li]
        return Row(
            k,
            path,
            path.rpartition("/")[2],
            KIND_NAMES[idx.kind[lj]],
            idx.mode[lj],
            idx.uid[lj],
            idx.gid[lj],
            self.total[k],
            idx.mtime[lj],
            idx.link(lj),
            MARK_NAMES[self.mark[k]],
            li,
            kids,
        )

    def walk(self, k: int = NO_PARENT, *, by_size: bool = False) -> Iterator[tuple[int, int]]:
        """(depth, id) depth-first, for printing a whole tree (no recursion: names nest 2000 deep)."""
        stack = [(0, c) for c in reversed(self.children(k, by_size=by_size))]
        while stack:
            depth, c = stack.pop()
            yield depth, c
            stack.extend((depth + 1, g) for g in reversed(self.children(c, by_size=by_size)))

    def is_dir(self, k: int) -> bool:
        r = self.ref[k]
        if r == NONE:
            return True
        li, lj = unpack(r)
        return self.files.layers[li].kind[lj] == DIR
