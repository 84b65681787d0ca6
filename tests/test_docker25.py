"""Docker 25+ `docker save`: an OCI layout plus manifest.json pointing into blobs/, cross-checked.

No Docker engine runs here, so the archive is assembled from skopeo's OCI layout exactly as Docker 25 lays it
out (index.json with io.containerd.image.name, manifest.json with blobs/sha256/<hex> paths), then broken the
ways Docker 25.0.x releases broke it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from regtui.oci import open_archive
from regtui.oci.verify import verify_archive
from tests.helpers.support import tar_folder


def _docker25(oci_dir: Path, out: Path, mutate=None) -> Path:
    folder = out.with_suffix(".d")
    shutil.copytree(oci_dir, folder)
    index = json.loads((folder / "index.json").read_text())
    desc = index["manifests"][0]
    desc["annotations"] = {
        "io.containerd.image.name": "docker.io/library/registry:2.8.1",
        "org.opencontainers.image.ref.name": "2.8.1",
    }
    (folder / "index.json").write_text(json.dumps(index))
    manifest = json.loads((folder / "blobs/sha256" / desc["digest"].split(":")[1]).read_bytes())
    entry = {
        "Config": "blobs/sha256/" + manifest["config"]["digest"].split(":")[1],
        "RepoTags": ["registry:2.8.1"],
        "Layers": ["blobs/sha256/" + l["digest"].split(":")[1] for l in manifest["layers"]],
    }
    if mutate:
        mutate(folder, index, manifest, entry)
    (folder / "manifest.json").write_text(json.dumps([entry]))
    tar_folder(folder, out)
    return out


def test_docker25_serves_stored_oci_bytes_with_tags_from_both(oci_dir, tmp_path):
    a = open_archive(str(_docker25(oci_dir, tmp_path / "d25.tar")))
    assert a.format == "docker-save"
    [img] = a.images()
    assert img.repository == "registry" and img.tags == ["2.8.1"]
    assert img.manifest.origin == "archive"
    assert not a.warnings
    assert verify_archive(a).ok


def test_docker25_layer_order_mismatch_is_reported(oci_dir, tmp_path):
    def swap(folder, index, manifest, entry):
        entry["Layers"][0], entry["Layers"][1] = entry["Layers"][1], entry["Layers"][0]

    a = open_archive(str(_docker25(oci_dir, tmp_path / "order.tar", swap)))
    [w] = a.warnings
    assert w.check == "cross-check" and "another order" in w.found


def test_docker25_missing_layer_in_manifest_json(oci_dir, tmp_path):
    def drop(folder, index, manifest, entry):
        entry["Layers"].pop()

    a = open_archive(str(_docker25(oci_dir, tmp_path / "drop.tar", drop)))
    [w] = a.warnings
    assert "lists 4 layers, the OCI manifest 5" in w.found


def test_docker25_wrong_descriptor_size_fails_verification(oci_dir, tmp_path):
    def wrong_size(folder, index, manifest, entry):
        manifest["layers"][1]["size"] += 7
        data = json.dumps(manifest).encode()
        import hashlib

        hexd = hashlib.sha256(data).hexdigest()
        (folder / "blobs/sha256" / hexd).write_bytes(data)
        index["manifests"][0].update(digest=f"sha256:{hexd}", size=len(data))
        (folder / "index.json").write_text(json.dumps(index))

    a = open_archive(str(_docker25(oci_dir, tmp_path / "size.tar", wrong_size)))
    report = verify_archive(a)
    assert not report.ok
    sizes = [p for p in report.errors() if p.check == "size"]
    assert sizes and "Docker 25.0" in sizes[0].cause


def test_docker25_image_missing_from_index_is_synthesized(oci_dir, tmp_path):
    def empty_index(folder, index, manifest, entry):
        index["manifests"] = []
        (folder / "index.json").write_text(json.dumps(index))

    a = open_archive(str(_docker25(oci_dir, tmp_path / "noindex.tar", empty_index)))
    [img] = a.images()
    assert img.manifest.origin.startswith("synthesized") and img.tags == ["2.8.1"]
    assert any(w.check == "cross-check" for w in a.warnings)
    assert verify_archive(a).ok
