"""Digest forensics in the domain: the serialization space, expectations, explanations and the manifest diff."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from regtui.oci import mediatypes as mt
from regtui.oci import open_archive
from regtui.oci.forensics import (
    DIFFERENT,
    IDENTICAL,
    MATCHED_SERVED,
    MATCHED_VARIANT,
    NO_MATCH,
    RECOMPRESSED,
    SERIALIZATION,
    UNCOMPRESSED,
    ExpectError,
    apply_expectations,
    attach_manifest,
    diff_manifests,
    parse_expect_list,
    parse_expectation,
)
from regtui.oci.serializations import Variant, candidates, serialize, variants


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def seed(seed_tar):
    archive = open_archive(str(seed_tar))
    return archive, archive.images()[0]


# -- the serialization space ------------------------------------------------------------------------------


def test_compact_docker_variant_is_what_we_already_synthesize(seed):
    _, image = seed
    assert serialize(image, Variant("docker")) == image.manifests[0].data
    oci = Variant("oci", config_family="oci", layer_family="oci")
    assert serialize(image, oci) == image.manifests[1].data


def test_docker_push_form_is_distribution_marshal_indent(seed):
    _, image = seed
    text = serialize(image, Variant("docker", indent="   ")).decode()
    cfg = image.config.descriptor
    assert text.startswith(
        '{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.'
        'manifest.v2+json",\n   "config": {\n      "mediaType": "application/vnd.docker.'
        f'container.image.v1+json",\n      "size": {cfg.size},\n      "digest": "{cfg.digest}"'
        '\n   },\n   "layers": [\n      {\n         "mediaType"'
    )
    assert text.endswith("\n      }\n   ]\n}")  # MarshalIndent writes no trailing newline


def test_key_order_newline_and_missing_media_type(seed):
    _, image = seed
    v = Variant(
        "oci",
        media_type_field=False,
        config_family="oci",
        layer_family="oci",
        key_order="digest-size",
        indent="\t",
        newline=True,
    )
    obj = json.loads(serialize(image, v))
    assert "mediaType" not in obj and list(obj["config"]) == ["mediaType", "digest", "size"]
    assert serialize(image, v).endswith(b"}\n") and b'\n\t"config"' in serialize(image, v)


def test_foreign_layer_variants(seed):
    _, image = seed
    obj = json.loads(serialize(image, Variant("docker", foreign=1)))
    assert [l["mediaType"] for l in obj["layers"]][:2] == [mt.DOCKER_FOREIGN_LAYER, mt.DOCKER_LAYER]
    obj = json.loads(serialize(image, Variant("oci", config_family="oci", layer_family="oci", foreign=-1)))
    assert {l["mediaType"] for l in obj["layers"]} == {mt.OCI_LAYER_ND_GZIP}


def test_space_is_bounded_and_distinct(seed):
    _, image = seed
    vs = list(variants(image))
    assert len(vs) == len(set(vs)) <= 1280
    table = candidates(image)
    assert 500 < len(table) <= len(vs)
    for digest, v in table.items():
        assert sha(serialize(image, v)) == digest


# -- expectations ---------------------------------------------------------------------------------------


def test_parse_expectation_forms_and_errors():
    d = "sha256:" + "a" * 64
    e = parse_expectation(f"docker.io/library/registry:2.8.1@{d}")
    assert (e.ref.name, e.ref.tag, e.digest) == ("registry", "2.8.1", d)
    with pytest.raises(ExpectError, match="no @sha256"):
        parse_expectation("registry:2.8.1")
    with pytest.raises(ExpectError, match="not a sha256/sha512 digest"):
        parse_expectation("registry@sha256:xyz")


def test_parse_expect_list_skips_comments_and_undigested_lines():
    d = "sha256:" + "b" * 64
    text = f"# images\n\n  registry:2.8.1@{d}   # pinned\nbusybox:1.36\n\tquay.io/x/y@{d}\n"
    exps, notes = parse_expect_list(text, "list.txt")
    assert [(e.ref.name, e.source) for e in exps] == [("registry", "list.txt:3"), ("quay.io/x/y", "list.txt:5")]
    assert notes == ["list.txt:4: busybox:1.36 has no digest; nothing to check"]
    with pytest.raises(ExpectError, match=r"list\.txt:1"):
        parse_expect_list("Registry@sha256:" + "c" * 64, "list.txt")


def test_served_variant_and_default_order(seed):
    archive, image = seed
    indent3 = sha(serialize(image, Variant("docker", indent="   ")))
    oci = image.manifests[1].digest
    results = apply_expectations(
        archive, [parse_expectation(f"registry:2.8.1@{indent3}"), parse_expectation(f"registry@{oci}")]
    )
    assert [r.status for r in results] == [MATCHED_VARIANT, MATCHED_SERVED]
    assert results[0].variant == "docker/config-docker/layers-docker/size-digest/indent3"
    assert "docker push" in results[0].variant_description
    assert [m.digest for m in image.manifests][:2] == [indent3, oci]
    assert archive.manifests[indent3].origin.startswith("recovered:")
    assert archive.roots_by_manifest[indent3] is image
    # What the results say is served is what the archive now serves (the model, not a side channel, holds it).
    assert all(archive.manifests[r.manifest.digest] is r.manifest for r in results if r.manifest)
    again = apply_expectations(archive, [parse_expectation(f"registry:2.8.1@{indent3}")])
    assert again[0].status == MATCHED_SERVED and image.manifests[0].digest == indent3
    assert len([m for m in image.manifests if m.digest == indent3]) == 1


def test_blob_digests_are_named_for_what_they_are(seed):
    archive, image = seed
    cfg = image.config.descriptor.digest
    layer = image.layers[2]
    results = apply_expectations(
        archive, [parse_expectation(f"registry:2.8.1@{d}") for d in (cfg, layer.digest, layer.diff_id)]
    )
    assert all(r.status == NO_MATCH for r in results)
    assert "config digest" in results[0].explanation and "image ID" in results[0].explanation
    assert "layer 2" in results[1].explanation and "blob digest" in results[1].explanation
    assert "diff_id" in results[2].explanation and "layer 2" in results[2].explanation


def test_unknown_digest_says_what_was_searched(seed):
    archive, image = seed
    [r] = apply_expectations(archive, [parse_expectation("quay.io/other/thing:1@sha256:" + "d" * 64)])
    assert r.status == NO_MATCH and r.searched == len(candidates(image))
    assert "no image named quay.io/other/thing" in r.explanation and "--expect-manifest" in r.explanation


def test_uncompressed_archive_explains_why_nothing_can_match(docker_tar, seed_tar):
    seed_image = open_archive(str(seed_tar)).images()[0]
    upstream = seed_image.manifests[0]
    archive = open_archive(str(docker_tar))
    [r] = apply_expectations(archive, [parse_expectation(f"registry:2.8.1@{upstream.digest}")])
    assert r.status == NO_MATCH and "uncompressed" in r.explanation
    exps = attach_manifest([parse_expectation(f"registry:2.8.1@{upstream.digest}")], upstream.data, "up.json")
    [r] = apply_expectations(open_archive(str(docker_tar)), exps)
    assert r.diff.verdict == UNCOMPRESSED and r.diff.recompressed == list(range(len(seed_image.layers)))
    assert r.diff.verdict == "same image content, uncompressed layers (docker save)"
    assert "no registry manifest can be rebuilt" in r.diff.summary
    assert upstream.digest in r.diff.summary  # whole digests
    assert r.explanation.count("sha256:") == 0 or upstream.digest in r.explanation


# -- upstream manifests and the diff ----------------------------------------------------------------------


def _reformatted(data: bytes) -> bytes:
    """What `jq .` makes of a manifest: same fields, 2-space indent, trailing newline."""
    return (json.dumps(json.loads(data), indent=2) + "\n").encode()


def test_supplied_manifest_with_our_blobs_is_served_verbatim(seed):
    archive, image = seed
    upstream = json.loads(image.manifests[0].data)
    upstream["annotations"] = {"org.opencontainers.image.source": "https://example.invalid/registry"}
    data = json.dumps(upstream, indent=4).encode()  # no variant makes annotations up
    digest = sha(data)
    assert digest not in candidates(image)
    exps = attach_manifest([parse_expectation(f"registry:2.8.1@{digest}")], data, "up.json")
    [r] = apply_expectations(archive, exps)
    assert r.status == MATCHED_VARIANT and r.variant == "upstream-manifest"
    assert archive.manifests[digest].data == data and image.manifests[0].digest == digest
    assert r.diff.verdict == SERIALIZATION
    assert any(row.field == "annotations[org.opencontainers.image.source]" for row in r.diff.differences)


def test_reformatted_manifest_file_is_diffed_not_served(seed):
    archive, image = seed
    original = serialize(image, Variant("docker", indent="   "))
    digest = sha(original) + ""
    other = json.loads(original)
    other["layers"][1]["digest"] = "sha256:" + "e" * 64
    original = json.dumps(other, indent=3).encode()
    digest = sha(original)
    exps = attach_manifest([parse_expectation(f"registry:2.8.1@{digest}")], _reformatted(original), "jq.json")
    [r] = apply_expectations(archive, exps)
    assert r.status == NO_MATCH
    assert "re-formatted" in r.explanation and r.diff.verdict == RECOMPRESSED and r.diff.recompressed == [1]


def test_diff_verdicts(seed, oci_tar):
    archive, image = seed
    ours = image.manifests[0]
    same = diff_manifests(image, ours.data, archive.blobs)
    assert same.verdict == IDENTICAL and not same.differences
    d = diff_manifests(
        image,
        serialize(image, Variant("oci", config_family="oci", layer_family="oci", key_order="digest-size", indent="  ")),
        archive.blobs,
    )
    assert d.verdict == SERIALIZATION
    assert {r.field for r in d.differences} >= {"mediaType", "serialization", "config.mediaType"}
    # skopeo's oci-archive of the seed re-compressed some layers and re-wrote the config (same diff_ids)
    oci_image = open_archive(str(oci_tar)).images()[0]
    changed = [i for i, (a, b) in enumerate(zip(image.layers, oci_image.layers, strict=False)) if a.digest != b.digest]
    assert changed and oci_image.config.descriptor.digest != image.config.descriptor.digest
    d = diff_manifests(image, oci_image.manifest.data, archive.blobs)
    shared = len(image.layers) - len(changed)
    assert d.verdict == DIFFERENT and f"{shared} of {len(image.layers)} upstream layers" in d.summary
    d = diff_manifests(image, oci_image.manifest.data, archive.blobs, upstream_config=oci_image.config.data)
    assert d.verdict == RECOMPRESSED and d.recompressed == changed
    assert "a config with the same diff_ids" in d.summary
    text = d.render_text()
    assert f"layers[{changed[0]}].digest" in text and "verdict:" in text
    other = json.loads(ours.data)
    other["config"]["digest"] = "sha256:" + "f" * 64
    other["layers"] = other["layers"][:2]
    d = diff_manifests(image, json.dumps(other).encode(), archive.blobs)
    assert d.verdict == DIFFERENT and "2 layers upstream vs 5 here" in d.summary
    assert "sha256:" + "f" * 64 in d.missing


def test_diff_uses_upstream_config_to_tell_recompression_from_rebuild(seed):
    archive, image = seed
    cfg = json.loads(image.config.data)
    cfg["created"] = "2024-01-01T00:00:00Z"  # a rebuilt config with the very same diff_ids
    cfg_bytes = json.dumps(cfg).encode()
    up = json.loads(image.manifests[0].data)
    up["config"]["digest"], up["config"]["size"] = sha(cfg_bytes), len(cfg_bytes)
    up["layers"][0]["digest"] = "sha256:" + "1" * 64
    data = json.dumps(up).encode()
    assert diff_manifests(image, data, archive.blobs).verdict == DIFFERENT
    d = diff_manifests(image, data, archive.blobs, upstream_config=cfg_bytes)
    assert d.verdict == RECOMPRESSED and d.recompressed == [0]


def test_cli_verify_and_inspect_report_expectations(seed_tar, tmp_path):
    image = open_archive(str(seed_tar)).images()[0]
    indent3 = sha(serialize(image, Variant("docker", indent="   ")))
    listing = tmp_path / "images.txt"
    listing.write_text(f"registry:2.8.1@{indent3}\n")
    p = subprocess.run(
        [sys.executable, "-m", "regtui", "verify", str(seed_tar), "--expect-file", str(listing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "matched by variant" in p.stdout and p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "regtui",
            "verify",
            str(seed_tar),
            "--expect",
            f"registry@{image.config.descriptor.digest}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1 and "config digest" in p.stdout


def test_cli_rejects_bad_expectations(seed_tar, tmp_path):
    for args, needle in (
        (["--expect", "registry:2.8.1"], "no @sha256"),
        (["--expect-file", str(tmp_path / "missing.txt")], "missing.txt"),
        (["--expect-manifest", str(seed_tar)], "not JSON"),
    ):
        p = subprocess.run(
            [sys.executable, "-m", "regtui", "verify", str(seed_tar), *args], capture_output=True, text=True, timeout=60
        )
        assert p.returncode == 2 and needle in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_remote_references_and_loopback():
    from regtui.oci.refs import is_loopback_host as is_loopback
    from regtui.oci.refs import parse_remote

    r = parse_remote("127.0.0.1:5000/registry:2.8.1")
    assert (r.host, r.path, r.tag, r.digest) == ("127.0.0.1:5000", "registry", "2.8.1", None)
    r = parse_remote("registry")  # docker's reading: Docker Hub, library/, latest
    assert (r.host, r.path, r.reference) == ("registry-1.docker.io", "library/registry", "latest")
    r = parse_remote("docker.io/bitnami/redis@sha256:" + "a" * 64)
    assert (r.host, r.path, r.reference) == ("registry-1.docker.io", "bitnami/redis", "sha256:" + "a" * 64)
    assert parse_remote("localhost/x/y:1").host == "localhost"
    for bad in ("127.0.0.1:5000/Registry", "host.example/x:b@d", "host.example/x:-bad"):
        with pytest.raises(ValueError):
            parse_remote(bad)
    assert all(map(is_loopback, ["127.0.0.1:5000", "localhost", "[::1]:5000", "127.1.2.3", "a.localhost:80"]))
    assert not any(map(is_loopback, ["registry-1.docker.io", "10.0.0.1:5000", "[2001:db8::1]:443"]))


def test_multi_platform_layout(multiarch_dir):
    archive = open_archive(str(multiarch_dir))
    [index] = archive.roots
    amd64 = next(i for i in archive.images() if i.platform and i.platform.architecture == "amd64")
    variant = serialize(amd64, Variant("docker", indent="   "))
    exps = [
        parse_expectation(f"registry:2.8.1@{d}")
        for d in (index.manifest.digest, amd64.manifests[0].digest, sha(variant))
    ]
    results = apply_expectations(archive, exps)
    assert [r.status for r in results] == [MATCHED_SERVED, MATCHED_SERVED, MATCHED_VARIANT]
    assert results[2].image is amd64 and "no image tagged" not in results[2].explanation
    assert archive.manifests[sha(variant)].data == variant


def test_mirror_names_find_the_image(seed):
    archive, image = seed
    d = sha(serialize(image, Variant("docker", indent="   ")))
    [r] = apply_expectations(archive, [parse_expectation(f"127.0.0.1:31999/registry:2.8.1@{d}")])
    assert r.status == MATCHED_VARIANT and r.image is image and "no image" not in r.explanation


def _index(*children: tuple[str, str]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": d,
                    "size": 500,
                    "platform": {"os": "linux", "architecture": arch},
                }
                for arch, d in children
            ],
        }
    ).encode()


def test_supplied_index_whose_child_is_not_reproducible(seed):
    archive, _image = seed
    index = _index(("amd64", "sha256:" + "2" * 64), ("arm64", "sha256:" + "3" * 64))
    exps = attach_manifest([parse_expectation(f"registry:2.8.1@{sha(index)}")], index, "index.json")
    [r] = apply_expectations(archive, exps)
    assert r.status == NO_MATCH and "multi-platform index" in r.explanation
    assert "sha256:222222222222" in r.explanation and "regtui diff" in r.explanation
    assert sha(index) not in archive.manifests
    index = _index(("arm64", "sha256:" + "3" * 64), ("s390x", "sha256:" + "4" * 64))
    exps = attach_manifest([parse_expectation(f"registry:2.8.1@{sha(index)}")], index, "index.json")
    [r] = apply_expectations(archive, exps)
    assert r.status == NO_MATCH and "no linux/amd64 child" in r.explanation and "linux/s390x" in r.explanation


def test_manifest_file_without_a_matching_expectation_becomes_its_own(seed):
    archive, image = seed
    data = serialize(
        image, Variant("oci", config_family="oci", layer_family="oci", key_order="digest-size", indent="  ")
    )
    other = "sha256:" + "5" * 64
    exps = [parse_expectation(f"registry@{other}"), parse_expectation(f"registry@{other[:-1]}6")]
    exps = attach_manifest(exps, data, "--expect-manifest up.json")
    assert len(exps) == 3 and exps[2].ref is None and exps[2].digest == sha(data) and exps[2].upstream_exact
    results = apply_expectations(archive, exps)
    assert [r.status for r in results] == [NO_MATCH, NO_MATCH, MATCHED_VARIANT]
    assert results[2].image is image and results[2].manifest.data == data


def test_cli_inspect_json_carries_expectations(seed_tar):
    image = open_archive(str(seed_tar)).images()[0]
    indent3 = sha(serialize(image, Variant("docker", indent="   ")))
    p = subprocess.run(
        [sys.executable, "-m", "regtui", "inspect", "--json", str(seed_tar), "--expect", f"registry:2.8.1@{indent3}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    [e] = out["expectations"]
    assert e["status"] == MATCHED_VARIANT and e["served"]["digest"] == indent3
    del out["expectations"]
    assert indent3 in json.dumps(out)  # the recovered form is listed with the image's manifests
