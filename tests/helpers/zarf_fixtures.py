"""Session fixtures: a Zarf package in every form, built in Zarf's documented layout from real images
(the seed image converted by skopeo, its multi-arch variant, the alpine image of the real Zarf package)."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.helpers.support import require_tool
from tests.helpers.zarf_support import ZARF_FIXTURE, package_from_layout, split, tar_folder, zstd

BASE = "org.opencontainers.image.base.name"
ALPINE_DIGEST = "sha256:a180ec8e5c7247c920c91508fa4ce86088946cc9e65f4aeb39091038bba88b0b"
# component -> images it needs, as a zarf.yaml lists them
COMPONENTS = {
    "core": ["docker.io/library/registry:2.8.1", "docker.io/library/alpine:3.20"],
    "app": ["ghcr.io/example/multi:1.0", "docker.io/library/alpine:3.20"],
    "pinned": [f"docker.io/library/alpine@{ALPINE_DIGEST}"],
}


def _merge(dest: Path, sources: list[tuple[Path, dict[str, str]]], extra: list[dict]) -> None:
    """One OCI layout from several: blobs pooled, index entries renamed with base.name as Zarf names them."""
    (dest / "blobs" / "sha256").mkdir(parents=True)
    manifests = []
    for src, rename in sources:
        for blob in (src / "blobs" / "sha256").iterdir():
            target = dest / "blobs" / "sha256" / blob.name
            if not target.exists():
                shutil.copyfile(blob, target)
        for m in json.loads((src / "index.json").read_text())["manifests"]:
            ann = dict(m.get("annotations") or {})
            old = ann.pop("org.opencontainers.image.ref.name", None) or ann.get(BASE)
            if old in rename:
                ann[BASE] = rename[old]
            m["annotations"] = ann
            manifests.append(m)
    manifests.extend(extra)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
    )


@pytest.fixture(scope="session")
def zarf_forms(oci_dir, multiarch_dir, tmp_path_factory) -> dict[str, Path]:
    """{"folder", "tar", "tar.zst", "split"} -> the same multi-image package in that form."""
    require_tool("zstd")
    base = tmp_path_factory.mktemp("zarf")
    alpine = base / "alpine-layout"
    with tarfile.open(ZARF_FIXTURE) as tf:
        members = [m for m in tf.getmembers() if m.name.startswith("images/")]
        tf.extractall(base / "fixture", members=members, filter="data")
    shutil.copytree(base / "fixture" / "images", alpine)
    layout = base / "layout"
    pinned = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": ALPINE_DIGEST,
        "size": 1022,
        "annotations": {BASE: f"docker.io/library/alpine@{ALPINE_DIGEST}"},
    }
    _merge(
        layout,
        [
            (oci_dir, {"registry:2.8.1": "docker.io/library/registry:2.8.1"}),
            (multiarch_dir, {"registry:2.8.1": "ghcr.io/example/multi:1.0"}),
            (alpine, {}),
        ],
        [pinned],
    )
    folder = package_from_layout(base / "zarf-package-multi-amd64-1.0.0", layout, COMPONENTS)
    tar = tar_folder(folder, base / "zarf-package-multi-amd64-1.0.0.tar")
    zst = zstd(tar, base / "zarf-package-multi-amd64-1.0.0.tar.zst")
    split_dir = base / "split"
    split_dir.mkdir()
    parts_src = split_dir / zst.name
    shutil.copyfile(zst, parts_src)
    part0 = split(parts_src, zst.stat().st_size // 3 + 1)
    parts_src.unlink()
    return {"folder": folder, "tar": tar, "tar.zst": zst, "split": part0}
