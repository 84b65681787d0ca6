"""Every supported format, made by real tools from the shared seed image, opens to the same content."""

from __future__ import annotations

from regtui.oci import ImageIndex, open_archive
from regtui.oci import mediatypes as mt
from regtui.oci.negotiate import choose

SEED_DOCKER_DIGEST = None  # computed below from the config and layer names, not hard-coded


def test_crane_tarball_synthesizes_go_containerregistry_manifest(seed_tar):
    a = open_archive(str(seed_tar))
    assert a.format == "crane-tarball"
    [img] = a.images()
    assert img.repository == "registry" and img.tags == ["2.8.1"]
    docker, oci = img.manifests
    assert docker.media_type == mt.DOCKER_MANIFEST and oci.media_type == mt.OCI_MANIFEST
    # Exactly go-containerregistry's bytes: compact, Go field order, no trailing newline.
    assert docker.data.startswith(
        b'{"schemaVersion":2,'
        b'"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1115,'
    )
    assert b" " not in docker.data and not docker.data.endswith(b"\n")
    assert [l.descriptor.media_type for l in img.layers] == [mt.DOCKER_LAYER] * 5
    assert img.layers[0].digest == "sha256:a0fad04f89d2c6130bb51c0d9fd6d93738fa1a4b689031ef18c34d7b4761ed1c"
    assert img.layers[0].diff_id and img.layers[0].diff_id.startswith("sha256:")
    assert img.platform and str(img.platform) == "linux/amd64"
    assert set(a.blobs) == {img.config.descriptor.digest, *(l.digest for l in img.layers)}


def test_docker_archive_serves_uncompressed_layers_as_oci(docker_tar):
    a = open_archive(str(docker_tar))
    assert a.format == "docker-save-legacy"
    [img] = a.images()
    assert img.repository == "registry" and img.tags == ["2.8.1"]
    assert [m.media_type for m in img.manifests] == [mt.OCI_MANIFEST]
    assert all(l.descriptor.media_type == mt.OCI_LAYER for l in img.layers)
    assert all(l.digest == l.diff_id for l in img.layers)


def test_oci_archive_and_folder_keep_stored_bytes(oci_tar, oci_dir):
    for path, fmt in ((oci_tar, "oci-archive"), (oci_dir, "oci-layout")):
        a = open_archive(str(path))
        assert a.format == fmt
        [img] = a.images()
        assert img.manifests[0].origin == "archive"
        stored = (oci_dir / "blobs" / "sha256" / img.manifest.digest.split(":")[1]).read_bytes()
        assert img.manifest.data == stored


def test_multiarch_index(multiarch_dir, multiarch_tar):
    for path in (multiarch_dir, multiarch_tar):
        a = open_archive(str(path))
        [root] = a.roots
        assert isinstance(root, ImageIndex) and root.tags == ["2.8.1"]
        assert sorted(str(i.platform) for i in root.images()) == ["linux/amd64", "linux/arm64/v8"]
        got = choose(root, [mt.OCI_MANIFEST])
        assert got.manifest and got.manifest.digest == root.children[0].manifest.digest
        assert choose(root, [mt.OCI_INDEX, mt.OCI_MANIFEST]).manifest is root.manifest


def test_synthesized_descriptor_json_follows_go_marshalling():
    from regtui.oci.gojson import go_marshal
    from regtui.oci.model import Descriptor
    from regtui.oci.synth import descriptor_json

    d = Descriptor(mt.DOCKER_FOREIGN_LAYER, "sha256:" + "a" * 64, 5, {"z": "<&>", "a": "1"}, urls=("https://x/y",))
    # v1.Descriptor field order; map keys sorted; <, >, & escaped as Go's encoding/json does.
    assert go_marshal(descriptor_json(d)) == (
        b'{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":5,"digest":"sha256:'
        + b"a" * 64
        + b'","urls":["https://x/y"],"annotations":{"a":"1","z":"\\u003c\\u0026\\u003e"}}'
    )
