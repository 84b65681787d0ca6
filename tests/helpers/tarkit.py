"""Build tar archives member by member, including members no well-behaved tool writes (absolute and `..` names,
links out of the archive), for the hostile-archive corpus and the archive fuzzer."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes = b""
    kind: str = "file"  # file | sym | hard | dir
    link: str = ""

    def renamed(self, name: str) -> Entry:
        return replace(self, name=name)


def file(name: str, data: bytes | str) -> Entry:
    return Entry(name, data.encode() if isinstance(data, str) else data)


def sym(name: str, target: str) -> Entry:
    return Entry(name, kind="sym", link=target)


def hard(name: str, target: str) -> Entry:
    return Entry(name, kind="hard", link=target)


def folder(name: str) -> Entry:
    return Entry(name, kind="dir")


_TYPES = {"file": tarfile.REGTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}


def tar_bytes(entries: list[Entry]) -> bytes:
    """A tar (PAX, so long names survive) holding exactly these entries, names kept verbatim."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _TYPES[e.kind]
            info.mode = 0o755 if e.kind == "dir" else 0o644
            info.linkname = e.link
            info.size = len(e.data) if e.kind == "file" else 0
            tf.addfile(info, io.BytesIO(e.data) if e.kind == "file" else None)
    return buf.getvalue()


def write_tar(path: Path, entries: list[Entry]) -> Path:
    path.write_bytes(tar_bytes(entries))
    return path


def read_entries(path: Path) -> list[Entry]:
    """Every member of a (trusted) tar, in order, data in memory: fixtures here are a few MiB."""
    out = []
    with tarfile.open(path, "r:") as tf:
        for info in tf:
            if info.isreg():
                out.append(Entry(info.name, tf.extractfile(info).read()))
            elif info.issym():
                out.append(sym(info.name, info.linkname))
            elif info.islnk():
                out.append(hard(info.name, info.linkname))
            elif info.isdir():
                out.append(folder(info.name))
    return out


def member_offsets(path: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (header offset, data offset, size)."""
    with tarfile.open(path, "r:") as tf:
        return {i.name: (i.offset, i.offset_data, i.size) for i in tf}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# -- OCI layout folders ------------------------------------------------------------------------------
def copy_layout(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    for p in dst.rglob("*"):  # skopeo writes read-only blobs; the corpus edits them
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    return layout / "blobs" / algo / hexd


def put_blob(layout: Path, data: bytes) -> str:
    d = sha256(data)
    blob_path(layout, d).write_bytes(data)
    return d


def index(layout: Path) -> dict:
    return json.loads((layout / "index.json").read_text())


def root_manifest(layout: Path) -> tuple[dict, dict]:
    """(index.json's first descriptor, the manifest it points at)."""
    desc = index(layout)["manifests"][0]
    return desc, json.loads(blob_path(layout, desc["digest"]).read_bytes())


def edit_first_descriptor(layout: Path, **changes) -> None:
    """Change fields of index.json's first descriptor (digest, size, mediaType...)."""
    idx = index(layout)
    idx["manifests"][0] = {**idx["manifests"][0], **changes}
    (layout / "index.json").write_text(json.dumps(idx))


def replace_root_manifest(layout: Path, manifest: dict | bytes, **desc_changes) -> str:
    """Store a new root manifest and point index.json's first descriptor at it."""
    data = manifest if isinstance(manifest, bytes) else compact(manifest)
    digest = put_blob(layout, data)
    edit_first_descriptor(layout, digest=digest, size=len(data), **desc_changes)
    return digest


# -- crane tarballs from scratch ---------------------------------------------------------------------
def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def pseudo_random(n: int, seed: bytes) -> bytes:
    """Deterministic incompressible bytes."""
    import random

    return random.Random(seed).randbytes(n)


def crane_tarball(
    path: Path,
    layers: list[bytes],
    compressed: list[bytes] | None = None,
    *,
    tag: str = "test/image:1",
    created_by: str | None = None,
) -> Path:
    """A go-containerregistry style tarball: config `sha256:<hex>`, layers `<hex>.tar.gz`, manifest.json.
    `compressed` defaults to gzip of each layer (mtime 0, so the bytes are deterministic)."""
    import gzip

    if compressed is None:
        compressed = [gzip.compress(l, compresslevel=1, mtime=0) for l in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/tool"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(l) for l in layers]},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": created_by or f"COPY layer{i} /"}
            for i in range(len(layers))
        ],
    }
    cfg = compact(config)
    names = [sha256(c).split(":")[1] + ".tar.gz" for c in compressed]
    manifest = [{"Config": sha256(cfg), "RepoTags": [tag], "Layers": names}]
    entries = [
        file(sha256(cfg), cfg),
        *(file(n, c) for n, c in zip(names, compressed, strict=True)),
        file("manifest.json", json.dumps(manifest).encode()),
    ]
    return write_tar(path, entries)
