"""Independent answers for the layer-contents tests: Python's tarfile reads each layer; a nested-dict file system
applies the changesets as the OCI image spec says; dive's Efficiency is re-implemented literally on per-layer
trees (its stacking, leaf visits and whiteout sizing), not on regtui's path table."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard


@dataclass
class M:
    """One tar member as tarfile reads it."""

    path: str
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    link: str
    sha: str | None  # of the content, regular files only
    typeflag: bytes = b"0"


def norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def read_layer(data: bytes) -> list[M]:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:4] == b"\x28\xb5\x2f\xfd":
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        _members(tf, out)
    return [m for m in out if m.path]


def _members(tf: tarfile.TarFile, out: list[M]) -> None:
    try:
        for info in tf:
            kind = (
                "dir"
                if info.isdir()
                else "symlink"
                if info.issym()
                else "hardlink"
                if info.islnk()
                else "file"
                if info.isreg()
                else "other"
            )
            sha = hashlib.sha256(tf.extractfile(info).read()).hexdigest() if info.isreg() else None
            link = norm(info.linkname) if info.islnk() else info.linkname
            out.append(
                M(
                    norm(info.name),
                    kind,
                    info.size if info.isreg() else 0,
                    info.mode & 0o7777,
                    info.uid,
                    info.gid,
                    link,
                    sha,
                    info.type,
                )
            )
    except tarfile.ReadError:
        pass  # umoci's whiteout-only layers lack the end block; what was read is complete


def layout_layers(layout: Path) -> list[list[M]]:
    idx = json.loads((layout / "index.json").read_text())
    man = json.loads((layout / "blobs/sha256" / idx["manifests"][0]["digest"][7:]).read_bytes())
    return [read_layer((layout / "blobs/sha256" / l["digest"][7:]).read_bytes()) for l in man["layers"]]


# -- the OCI changeset oracle ----------------------------------------------------------------------
@dataclass
class Node:
    m: M | None  # None: a directory only implied by what is under it
    children: dict[str, Node] = field(default_factory=dict)


def _walk(root: Node, path: str, create: bool) -> Node | None:
    node = root
    for part in path.split("/")[:-1]:
        nxt = node.children.get(part)
        if nxt is None:
            if not create:
                return None
            nxt = node.children[part] = Node(None)
        node = nxt
    return node


def _lookup(root: Node, path: str) -> Node | None:
    parent = _walk(root, path, False)
    return parent.children.get(path.split("/")[-1]) if parent else None


def _same(a: M, b: M) -> bool:
    return (a.kind, a.sha, a.size, a.mode, a.uid, a.gid, a.link) == (
        b.kind,
        b.sha,
        b.size,
        b.mode,
        b.uid,
        b.gid,
        b.link,
    )


def apply_layers(layers: list[list[M]]) -> tuple[Node, list[list[tuple[str, str]]]]:
    """The final tree and, per layer, (path, mark) for each member in order (whiteouts by target path)."""
    root = Node(None)
    marks: list[list[tuple[str, str]]] = []
    for members in layers:
        lm = []
        for m in members:  # marks against the tree below this layer
            base = m.path.split("/")[-1]
            if base == ".wh..wh..opq":
                d = _lookup(root, m.path.rpartition("/")[0]) if "/" in m.path else root
                lm.append((m.path.rpartition("/")[0], "removed" if d and d.children else "no-op"))
            elif base.startswith(".wh."):
                target = m.path[: len(m.path) - len(base)] + base[4:]
                lm.append((target, "removed" if _lookup(root, target) else "no-op"))
            else:
                old = _lookup(root, m.path)
                if old is None:
                    lm.append((m.path, "added"))
                elif old.m is None:
                    lm.append((m.path, "modified" if m.kind == "dir" else "added"))
                else:
                    lm.append((m.path, "unchanged" if _same(old.m, m) else "modified"))
        marks.append(lm)
        for m in members:  # removals (lower layers only) before this layer's own writes
            base = m.path.split("/")[-1]
            if base == ".wh..wh..opq":
                d = _lookup(root, m.path.rpartition("/")[0]) if "/" in m.path else root
                if d:
                    d.children = {}
            elif base.startswith(".wh."):
                parent = _walk(root, m.path, False)
                if parent:
                    parent.children.pop(base[4:], None)
        for m in members:
            base = m.path.split("/")[-1]
            if base.startswith(".wh."):
                continue
            parent = _walk(root, m.path, True)
            old = parent.children.get(base)
            if old is not None and m.kind == "dir" and (old.m is None or old.m.kind == "dir"):
                old.m = m
            else:
                parent.children[base] = Node(m)
    return root, marks


def flatten(root: Node, prefix: str = "") -> dict[str, M | None]:
    out: dict[str, M | None] = {}
    for name, node in root.children.items():
        p = f"{prefix}{name}"
        out[p] = node.m
        out.update(flatten(node, p + "/"))
    return out


# -- dive's Efficiency, literally ------------------------------------------------------------------
@dataclass
class DNode:
    name: str
    size: int = 0
    is_dir: bool = False
    children: dict[str, DNode] = field(default_factory=dict)


def _dive_tree(members: list[M]) -> DNode:
    root = DNode("")
    for m in members:
        node = root
        names = m.path.split("/")
        for i, name in enumerate(names):
            if name not in node.children:
                if name.startswith(".wh..wh.."):
                    break
                node.children[name] = DNode(name)
            node = node.children[name]
            if i == len(names) - 1:
                node.size, node.is_dir = m.size, m.kind == "dir"
    return root


def _leaves(node: DNode, prefix: str = ""):
    for name in sorted(node.children):
        child = node.children[name]
        yield from _leaves(child, f"{prefix}/{name}")
        if not child.children:
            yield f"{prefix}/{name}", child


def _copy(n: DNode) -> DNode:
    return DNode(n.name, n.size, n.is_dir, {k: _copy(v) for k, v in n.children.items()})


def _all(node: DNode, prefix: str = ""):
    for name in sorted(node.children):
        child = node.children[name]
        yield from _all(child, f"{prefix}/{name}")
        yield f"{prefix}/{name}", child


def _stack(lower: DNode, upper: DNode) -> None:
    for path, node in list(_all(upper)):
        if node.name.startswith(".wh."):
            parts = path.strip("/").split("/")
            parts[-1] = parts[-1][4:]
            parent = lower
            for p in parts[:-1]:
                parent = parent.children.get(p) if parent else None
            if parent:
                parent.children.pop(parts[-1], None)
        else:
            cur = lower
            for p in path.strip("/").split("/"):
                cur = cur.children.setdefault(p, DNode(p))
            cur.size, cur.is_dir = node.size, node.is_dir


def _get(root: DNode, path: str) -> DNode | None:
    node: DNode | None = root
    for p in path.strip("/").split("/"):
        node = node.children.get(p) if node else None
    return node


def dive_analysis(layers: list[list[M]]) -> dict:
    trees = [_dive_tree(ms) for ms in layers]
    data: dict[str, list[int]] = {}  # path -> [cumulative, minimum, count]
    for idx, tree in enumerate(trees):
        for path, node in _leaves(tree):
            key = path
            size = node.size
            if node.name.startswith(".wh."):
                key = path.rpartition("/")[0] + "/" + node.name[4:]
                stacked = _copy(trees[0])
                for t in trees[:idx]:
                    _stack(stacked, t)
                prev = _get(stacked, key)
                size = sum(n.size for _, n in _all(prev)) + prev.size if prev and prev.is_dir else 0
            d = data.setdefault(key, [0, -1, 0])
            d[0] += size
            d[1] = size if d[1] < 0 or size < d[1] else d[1]
            d[2] += 1
    total = sum(d[0] for d in data.values())
    minimum = sum(d[1] for d in data.values())
    offenders = {(k.lstrip("/"), d[2], d[0]) for k, d in data.items() if d[2] >= 2}
    wasted = sum(o[2] for o in offenders)
    sizes = [sum(m.size for m in ms) for ms in layers]
    user = sum(sizes[1:])
    return {
        "efficiency": minimum / total if total else 1.0,
        "wasted": wasted,
        "offenders": offenders,
        "user_wasted_percent": wasted / user if user else 0.0,
    }
