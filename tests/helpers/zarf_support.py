"""Zarf package builders for the tests: variants of the real Zarf-built fixture, and packages assembled in
Zarf's documented layout from real OCI layouts (written by skopeo)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
if not FIXTURES.exists():
    FIXTURES = Path("/work/shared/fixtures")
ZARF_FIXTURE = FIXTURES / "zarf-package-test-uncompressed-amd64-0.0.1.tar"


def fixture_members() -> dict[str, bytes | None]:
    """name -> bytes (None for folders), in the fixture's order."""
    out: dict[str, bytes | None] = {}
    with tarfile.open(ZARF_FIXTURE) as tf:
        for info in tf:
            f = tf.extractfile(info) if info.isreg() else None
            out[info.name] = f.read() if f else None
    return out


def write_tar(path: Path, members: dict[str, bytes | None]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
    return path


def variant(path: Path, changes: dict[str, bytes | None]) -> Path:
    """The fixture with members replaced (bytes), removed (None) or added."""
    members = fixture_members()
    for name, data in changes.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    return write_tar(path, members)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_from_layout(
    dest: Path,
    layout: Path,
    images: dict[str, list[str]],
    name: str = "multi",
    extra: dict[str, bytes] | None = None,
    aggregate_in: str = "build",
) -> Path:
    """A Zarf package folder in the documented layout: zarf.yaml with components needing `images`
    (component -> image refs), checksums.txt, images/ (the OCI layout, index annotated with base.name)."""
    dest.mkdir(parents=True)
    subprocess.run(["cp", "-r", str(layout), str(dest / "images")], check=True)
    files: dict[str, bytes] = {"components/" + c + ".tar": _empty_tar() for c in images}
    files["sboms.tar"] = _empty_tar()
    files.update(extra or {})
    for rel, data in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    lines = []
    for p in sorted(dest.rglob("*")):
        if p.is_file():
            rel = p.relative_to(dest).as_posix()
            lines.append(f"{sha(p.read_bytes())} {rel}")
    checksums = ("\n".join(lines) + "\n").encode()
    (dest / "checksums.txt").write_bytes(checksums)
    comps = "".join(
        f"- name: {c}\n  required: true\n  images:\n" + "".join(f"  - {i}\n" for i in refs)
        for c, refs in images.items()
    )
    agg = sha(checksums)
    meta_agg = f"  aggregateChecksum: {agg}\n" if aggregate_in == "metadata" else ""
    build_agg = f"  aggregateChecksum: {agg}\n" if aggregate_in == "build" else ""
    (dest / "zarf.yaml").write_text(
        f"kind: ZarfPackageConfig\nmetadata:\n  name: {name}\n  version: 1.0.0\n  architecture: amd64\n{meta_agg}"
        f"build:\n  terminal: test\n  user: test\n  architecture: amd64\n  timestamp: Mon, 01 Jan 2024 00:00:00 +0000\n"
        f"  version: v0.60.0\n{build_agg}components:\n{comps}"
    )
    return dest


def _empty_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w"):
        pass
    return buf.getvalue()


def name_layout_by_base(layout: Path) -> None:
    """skopeo names images with ref.name; Zarf with base.name = the full reference. Rewrite index.json so."""
    index = json.loads((layout / "index.json").read_text())
    for m in index["manifests"]:
        ann = m.get("annotations") or {}
        ref = ann.pop("org.opencontainers.image.ref.name", None)
        if ref:
            ann["org.opencontainers.image.base.name"] = ref
        m["annotations"] = ann
    (layout / "index.json").write_text(json.dumps(index))


def tar_folder(folder: Path, out: Path) -> Path:
    """The folder as a tar, members relative to it (as Zarf archives a package)."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for p in sorted(folder.rglob("*")):
            tf.add(p, arcname=p.relative_to(folder).as_posix(), recursive=False)
    return out


def zstd(src: Path, out: Path) -> Path:
    subprocess.run(["zstd", "-q", "-f", "-T0", str(src), "-o", str(out)], check=True)
    return out


def split(src: Path, size: int, capital_keys: bool = True) -> Path:
    """Zarf's split form: `src.part000` JSON, `.part001`… the bytes."""
    data = src.read_bytes()
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    keys = ("Sha256Sum", "Bytes", "Count") if capital_keys else ("sha256Sum", "bytes", "count")
    head = dict(zip(keys, (sha(data), len(data), len(chunks)), strict=True))
    Path(f"{src}.part000").write_text(json.dumps(head))
    for i, c in enumerate(chunks, 1):
        Path(f"{src}.part{i:03d}").write_bytes(c)
    return Path(f"{src}.part000")


def env_cache(tmp: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp)}
