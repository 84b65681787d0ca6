"""The layout reader's manifest limit scales with the indexes read: big real bundles open, bombs do not,
and REGTUI_MAX_MANIFESTS overrides it."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest

from regtui.oci import open_archive
from regtui.oci.errors import ArchiveError


def big_layout(src: Path, dest: Path, images: int) -> Path:
    """`images` distinct single-platform images (one annotation differs), sharing the seed's config and layers."""
    shutil.copytree(src, dest)
    index = json.loads((dest / "index.json").read_text())
    desc = index["manifests"][0]
    manifest = json.loads((dest / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_bytes())
    entries = []
    for i in range(images):
        manifest["annotations"] = {"n": str(i)}
        data = json.dumps(manifest).encode()
        hexd = hashlib.sha256(data).hexdigest()
        (dest / "blobs" / "sha256" / hexd).write_bytes(data)
        entries.append(
            {
                "mediaType": desc["mediaType"],
                "digest": f"sha256:{hexd}",
                "size": len(data),
                "annotations": {"org.opencontainers.image.ref.name": f"example.com/app{i}:1"},
            }
        )
    index["manifests"] = entries
    (dest / "index.json").write_text(json.dumps(index))
    return dest


def test_more_than_2000_images_open(oci_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("REGTUI_MAX_MANIFESTS", raising=False)
    lay = big_layout(oci_dir, tmp_path / "big", 2500)
    t = time.monotonic()
    a = open_archive(str(lay))
    assert len(a.roots) == 2500 and time.monotonic() - t < 30
    monkeypatch.setenv("REGTUI_MAX_MANIFESTS", "100")
    with pytest.raises(ArchiveError) as e:
        open_archive(str(lay))
    assert "more than 100 manifests" in e.value.line() and "REGTUI_MAX_MANIFESTS" in e.value.line()
