"""Wasted bytes and efficiency as dive defines them (wagoodman/dive `filetree.Efficiency`, `image.Analyze`), so
the numbers compare with dive's and its CI thresholds mean the same here.

Per layer, dive visits the leaves of that layer's own tree (a directory with entries under it in the same layer
is not a leaf; a whiteout always is). Each visit adds the entry's size to its path's cumulative size and keeps the
path's minimum; a whiteout adds 0 when it removes a file and the size of the removed subtree when it removes a
directory. Paths visited more than once are the inefficiencies; wasted bytes are their cumulative sizes (all
copies, the surviving one included, as dive sums them). Efficiency = sum of minimums / sum of cumulatives;
user-wasted percent = wasted bytes / the summed tar sizes of every layer but the first.

Where dive is not followed: a whiteout of a path that no lower layer has counts 0 (dive aborts visiting the rest of
that layer), and removed subtrees are sized on the spec's merge (dive ignores opaque directories there).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from regtui.oci.contents.merge import NONE, ROOT, ImageFiles, pack, unpack
from regtui.oci.contents.tarscan import DIR, OPAQUE, WHITEOUT


@dataclass(frozen=True)
class Offender:
    path: str
    count: int  # how many layers wrote or removed it
    bytes: int  # dive's cumulative size over those copies


@dataclass
class Waste:
    efficiency: float
    wasted_bytes: int
    size_bytes: int  # dive's image size: every layer's summed tar entry sizes
    user_size_bytes: int  # the same without the first (base) layer
    user_wasted_percent: float  # a fraction, as dive's `WastedUserPercent` (0.1 = 10 %)
    offenders: list[Offender]  # largest first; every path dive lists as inefficient
    layer_hidden_bytes: list[int] = field(default_factory=list)  # per layer: stored bytes the final image hides

    def top(self, n: int = 10) -> list[Offender]:
        return [o for o in self.offenders if o.bytes > 0][:n]


def analyze(files: ImageFiles) -> Waste:
    n = len(files.paths)
    cum = array("q", [0]) * n
    low = array("q", [-1]) * n
    count = array("I", [0]) * n
    present = array("q", [NONE]) * n
    for i, idx in enumerate(files.layers):
        keys, entries = files.by_path[i]
        m = len(keys)
        pos = 0
        while pos < m:
            k = keys[pos]
            last = pos
            while last + 1 < m and keys[last + 1] == k:
                last += 1
            j = entries[last]
            nxt = keys[last + 1] if last + 1 < m else n
            pos = last + 1
            if k == ROOT:
                continue  # dive adds nothing for an opaque marker at the root
            kind = idx.kind[j]
            if kind == WHITEOUT:
                size = _removed_size(files, present, k)
            elif nxt < files.end[k]:
                continue  # not a leaf of this layer's tree
            else:
                size = 0 if kind == OPAQUE else idx.size[j]
            cum[k] += size
            if low[k] < 0 or size < low[k]:
                low[k] = size
            count[k] += 1
        files.apply_layer(present, i)
    total = sum(cum)
    minimum = sum(v for v in low if v > 0)
    offenders = sorted(
        (Offender(files.paths[k], count[k], cum[k]) for k in range(n) if count[k] >= 2),
        key=lambda o: (-o.bytes, o.path),
    )
    wasted = sum(o.bytes for o in offenders)
    sizes = [idx.file_bytes() for idx in files.layers]
    user = sum(sizes[1:])
    return Waste(
        efficiency=1.0 if total == 0 else minimum / total,
        wasted_bytes=wasted,
        size_bytes=sum(sizes),
        user_size_bytes=user,
        user_wasted_percent=(wasted / user) if user else (0.0 if wasted == 0 else float("inf")),
        offenders=offenders,
        layer_hidden_bytes=_hidden_per_layer(files),
    )


def _removed_size(files: ImageFiles, present: array[int], k: int) -> int:
    ref = present[k]
    if ref == NONE:
        return 0
    li, lj = unpack(ref)
    if files.layers[li].kind[lj] != DIR:
        return 0
    total = 0
    for q in range(k, files.end[k]):
        r = present[q]
        if r != NONE:
            a, b = unpack(r)
            total += files.layers[a].size[b]
    return total


def _hidden_per_layer(files: ImageFiles) -> list[int]:
    shown = set(files.present)
    return [
        sum(idx.size[j] for j in range(len(idx)) if idx.size[j] and pack(i, j) not in shown)
        for i, idx in enumerate(files.layers)
    ]
