"""Digest forensics against the real Debian docker-registry (distribution 2.8) and skopeo.

Manifests are pushed in each style (hand-made PUTs of exact bytes, and skopeo's own), then regtui, given an
archive that lacks those bytes, must recover each digest, serve it to skopeo, or explain precisely why not.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from regtui.oci import mediatypes as mt
from regtui.oci import open_archive
from regtui.oci.forensics import (
    MATCHED_SERVED,
    MATCHED_VARIANT,
    NO_MATCH,
    RECOMPRESSED,
    apply_expectations,
    attach_manifest,
    parse_expectation,
)
from regtui.oci.serializations import Variant, serialize
from tests.helpers.distribution import DistributionRegistry, TokenServer
from tests.helpers.support import free_port, require_tool, stop_process

REGTUI = [sys.executable, "-m", "regtui"]

# The styles we PUT by hand: (tag, variant) — docker push's indented form, buildkit's, umoci's, and odd ones.
STYLES = {
    "docker-indent3": Variant("docker", indent="   "),
    "oci-indent2": Variant("oci", config_family="oci", layer_family="oci", key_order="digest-size", indent="  "),
    "oci-no-mediatype": Variant(
        "oci", media_type_field=False, config_family="oci", layer_family="oci", key_order="digest-size"
    ),
    "docker-tab-newline": Variant("docker", indent="\t", newline=True),
    "oci-distribution3": Variant("oci", config_family="oci", layer_family="oci", key_order="digest-size", indent="   "),
}


def pull_crane_tarball(registry: DistributionRegistry, repo: str, tag: str, out: Path) -> None:
    """What `crane pull` writes: config and compressed layers as the registry has them, no manifest bytes."""
    data, _ = registry.get_manifest(repo, tag)
    m = json.loads(data)
    cfg = m["config"]["digest"]
    layers = [l["digest"] for l in m["layers"]]
    with tarfile.open(out, "w") as tf:

        def add(name: str, body: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))

        add(cfg, registry.get_blob(repo, cfg))
        names = []
        for d in layers:
            name = d.split(":")[1] + ".tar.gz"
            add(name, registry.get_blob(repo, d))
            names.append(name)
        add("manifest.json", json.dumps([{"Config": cfg, "RepoTags": [f"{repo}:{tag}"], "Layers": names}]).encode())


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with DistributionRegistry(tmp_path_factory.mktemp("distribution")) as reg:
        yield reg


@pytest.fixture(scope="module")
def pushed(registry, seed_tar):
    """The seed image's blobs under `registry`, and one tag per hand-made style: tag -> digest distribution computed."""
    archive = open_archive(str(seed_tar))
    image = archive.images()[0]
    fd = os.open(seed_tar, os.O_RDONLY)
    try:
        for loc in [image.config.location, *(l.location for l in image.layers)]:
            registry.push_blob("registry", os.pread(fd, loc.size, loc.offset))
    finally:
        os.close(fd)
    out = {}
    for tag, v in STYLES.items():
        out[tag] = registry.put_manifest("registry", tag, serialize(image, v), v.media_type)
    return out


def test_distribution_stores_each_style_verbatim(registry, pushed, seed_tar):
    image = open_archive(str(seed_tar)).images()[0]
    synthesized = {m.digest for m in image.manifests}
    for tag, digest in pushed.items():
        data, served = registry.get_manifest("registry", tag)
        assert served == digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert digest not in synthesized, f"{tag} should not be a form regtui serves without forensics"
    indented = registry.get_manifest("registry", "docker-indent3")[0].decode()
    assert indented.startswith('{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution')


def test_each_pushed_digest_is_recovered_from_the_seed_tarball(pushed, seed_tar):
    archive = open_archive(str(seed_tar))
    exps = [parse_expectation(f"docker.io/library/registry:2.8.1@{d}") for d in pushed.values()]
    results = apply_expectations(archive, exps)
    for (tag, digest), r in zip(pushed.items(), results, strict=True):
        assert r.status == MATCHED_VARIANT, r.line()
        assert r.variant == STYLES[tag].slug
        assert r.manifest.digest == digest and archive.manifests[digest] is r.manifest
        assert r.manifest.origin == f"recovered:{STYLES[tag].slug}"
    image = archive.images()[0]
    # the first expectation is what the tag now serves by default
    assert image.manifests[0].digest == pushed["docker-indent3"]
    assert image.manifests[0].media_type == mt.DOCKER_MANIFEST


def test_regtui_diff_matches_hand_made_styles(registry, pushed, seed_tar):
    for tag in ("docker-indent3", "oci-no-mediatype"):
        p = subprocess.run(
            [*REGTUI, "diff", str(seed_tar), f"{registry.host}/registry:{tag}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stdout + p.stderr
        assert "match:" in p.stdout and pushed[tag] in p.stdout
        assert STYLES[tag].slug in p.stdout
        # The truthful verdict: regtui's own default against the upstream bytes, both digests whole, then
        # the command that serves the upstream digest.
        default = open_archive(str(seed_tar)).images()[0].manifests[0].digest
        assert "verdict: identical" not in p.stdout
        assert (
            f"verdict: same content, different serialization: regtui's default is {default} (compact, as "
            f"crane writes it); upstream is {pushed[tag]}"
        ) in p.stdout
        verdict_at = p.stdout.index("verdict:")
        assert p.stdout.index(f"regtui serve {seed_tar} --expect registry@{pushed[tag]}") > verdict_at
    p = subprocess.run(
        [*REGTUI, "diff", str(seed_tar), f"{registry.host}/registry:docker-indent3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "(3-space indent)" in p.stdout


def test_regtui_diff_of_a_docker_save_archive_says_same_content(registry, pushed, docker_tar):
    p = subprocess.run(
        [*REGTUI, "diff", str(docker_tar), f"{registry.host}/registry:docker-indent3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert (
        "verdict: same image content, uncompressed layers (docker save): all 5 layers have the same content" in p.stdout
    )
    assert "no registry manifest can be rebuilt" in p.stdout and "Nothing in common" not in p.stdout
    assert pushed["docker-indent3"] in p.stdout


@pytest.fixture(scope="module")
def skopeo_pushed(registry, seed_tar):
    """skopeo's own serializations (Docker v2 and OCI) of the seed image; skopeo re-compresses some layers."""
    skopeo = require_tool("skopeo")
    out = {}
    for tag, fmt in (("skopeo-docker", "v2s2"), ("skopeo-oci", "oci")):
        subprocess.run(
            [
                skopeo,
                "copy",
                "-q",
                "--dest-tls-verify=false",
                "--format",
                fmt,
                f"docker-archive:{seed_tar}",
                f"docker://{registry.host}/skopeo:{tag}",
            ],
            check=True,
            timeout=120,
        )
        out[tag] = registry.get_manifest("skopeo", tag)
    return out


def test_skopeo_digests_recovered_from_a_tarball_without_manifest_bytes(registry, skopeo_pushed, tmp_path):
    for tag, (data, digest) in skopeo_pushed.items():
        tarball = tmp_path / f"{tag}.tar"
        pull_crane_tarball(registry, "skopeo", tag, tarball)
        archive = open_archive(str(tarball))
        assert archive.format == "crane-tarball"
        [r] = apply_expectations(archive, [parse_expectation(f"skopeo:{tag}@{digest}")])
        assert r.matched, r.line()
        assert r.manifest.data == data
        if tag == "skopeo-docker":
            assert r.status == MATCHED_SERVED  # skopeo writes schema2 exactly as go-containerregistry does
        else:
            assert r.status == MATCHED_VARIANT
            assert r.variant == "oci/config-oci/layers-oci/digest-size/compact"


def test_recompressed_layers_are_named(registry, skopeo_pushed, seed_tar):
    data, digest = skopeo_pushed["skopeo-docker"]
    archive = open_archive(str(seed_tar))
    image = archive.images()[0]
    exps = attach_manifest([parse_expectation(f"registry:2.8.1@{digest}")], data, "upstream.json")
    [r] = apply_expectations(archive, exps)
    assert r.status == NO_MATCH
    assert r.diff is not None and r.diff.verdict == RECOMPRESSED
    upstream = json.loads(data)["layers"]
    changed = [i for i, (l, u) in enumerate(zip(image.layers, upstream, strict=False)) if l.digest != u["digest"]]
    assert changed and r.diff.recompressed == changed
    for i in changed:
        assert f"layers[{i}]" in r.explanation and upstream[i]["digest"][:19] in r.explanation
    assert set(r.diff.missing) == {upstream[i]["digest"] for i in changed}
    assert image.manifests[0].origin == "synthesized-docker"  # nothing served in its place


def test_regtui_diff_explains_recompression_and_fails(registry, skopeo_pushed, seed_tar):
    p = subprocess.run(
        [*REGTUI, "diff", str(seed_tar), f"{registry.host}/skopeo:skopeo-docker"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert "verdict: re-compressed layers" in p.stdout
    assert "≠ layers[0].digest" in p.stdout and "missing from the archive" in p.stdout


def test_regtui_diff_json_and_errors(registry, pushed, seed_tar):
    p = subprocess.run(
        [*REGTUI, "diff", "--json", str(seed_tar), f"{registry.host}/registry:oci-indent2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == MATCHED_VARIANT and out["served"]["digest"] == pushed["oci-indent2"]
    p = subprocess.run(
        [*REGTUI, "diff", str(seed_tar), f"{registry.host}/registry:nope"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 2 and "MANIFEST_UNKNOWN" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run(
        [*REGTUI, "diff", str(seed_tar), "127.0.0.1:1/registry:2.8.1"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 2 and "cannot reach 127.0.0.1:1" in p.stderr


def test_regtui_diff_picks_the_platform_child_of_an_index(registry, pushed, seed_tar):
    child, digest = registry.get_manifest("registry", "docker-indent3")
    other, other_digest = registry.get_manifest("registry", "oci-indent2")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": other_digest,
                    "size": len(other),
                    "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                },
                {
                    "mediaType": mt.DOCKER_MANIFEST,
                    "digest": digest,
                    "size": len(child),
                    "platform": {"architecture": "amd64", "os": "linux"},
                },
            ],
        }
    ).encode()
    index_digest = registry.put_manifest("registry", "multi", index, mt.OCI_INDEX)
    p = subprocess.run(
        [*REGTUI, "diff", str(seed_tar), f"{registry.host}/registry:multi"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"linux/amd64 child of index {index_digest[:19]}" in p.stdout and digest in p.stdout


class RegtuiServe:
    """`regtui serve ARCHIVE --expect ...` as a user runs it, on a free loopback port; stopped by PID."""

    def __init__(self, args: list[str], log: Path, scheme: str = "http"):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [*REGTUI, "serve", "--port", str(self.port), *args],
            stdout=open(log, "wb"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{scheme}://{self.host}/v2/", timeout=1, verify=False).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("regtui serve did not start: " + log.read_text())

    def stop(self) -> None:
        stop_process(self.proc, 15)


def _skopeo_pull(ref: str, dest: Path) -> bytes:
    """skopeo copies `ref` to a dir: folder (which keeps the manifest as received; skopeo checks its digest
    when pulling by digest) and returns those manifest bytes."""
    skopeo = require_tool("skopeo")
    subprocess.run(
        [
            skopeo,
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            "amd64",
            f"docker://{ref}",
            f"dir:{dest}",
        ],
        check=True,
        timeout=120,
    )
    return (dest / "manifest.json").read_bytes()


def test_skopeo_pulls_the_upstream_digests_from_regtui(registry, pushed, seed_tar, tmp_path):
    indent3, oci2 = pushed["docker-indent3"], pushed["oci-indent2"]
    server = RegtuiServe(
        [str(seed_tar), "--expect", f"registry:2.8.1@{indent3}", "--expect", f"docker.io/library/registry@{oci2}"],
        tmp_path / "serve.log",
    )
    try:
        log = tmp_path / "serve.log"
        assert "matched by variant docker/config-docker/layers-docker/size-digest/indent3" in log.read_text()
        for n, digest in enumerate((indent3, oci2)):
            data = _skopeo_pull(f"{server.host}/registry@{digest}", tmp_path / f"by-digest-{n}")
            assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
            assert data == registry.get_manifest("registry", digest)[0]  # the very bytes distribution stores
        # by tag, the first expectation is the default form
        r = httpx.get(
            f"http://{server.host}/v2/registry/manifests/2.8.1", headers={"Accept": ", ".join(sorted(mt.ALL_MANIFESTS))}
        )
        assert r.headers["Docker-Content-Digest"] == indent3
        data = _skopeo_pull(f"{server.host}/registry:2.8.1", tmp_path / "by-tag")
        assert "sha256:" + hashlib.sha256(data).hexdigest() == indent3
    finally:
        server.stop()


def test_a_multi_platform_index_is_served_sparse(registry, pushed, seed_tar, tmp_path):
    """Air-gap lists name the index digest; given the index bytes, regtui serves it and our platform's child."""
    child, digest = registry.get_manifest("registry", "docker-indent3")
    other, other_digest = registry.get_manifest("registry", "docker-tab-newline")  # stands in for arm64
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.DOCKER_LIST,
            "manifests": [
                {
                    "mediaType": mt.DOCKER_MANIFEST,
                    "digest": digest,
                    "size": len(child),
                    "platform": {"architecture": "amd64", "os": "linux"},
                },
                {
                    "mediaType": mt.DOCKER_MANIFEST,
                    "digest": other_digest,
                    "size": len(other),
                    "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                },
            ],
        },
        indent=3,
    ).encode()
    index_digest = registry.put_manifest("registry", "sparse", index, mt.DOCKER_LIST)
    (tmp_path / "index.json").write_bytes(registry.get_manifest("registry", "sparse")[0])
    listing = tmp_path / "images.txt"
    listing.write_text(
        f"# air-gap list\n\ndocker.io/library/registry:2.8.1@{index_digest}  # upstream index\n"
        "docker.io/library/busybox:1.36\n"
    )
    server = RegtuiServe(
        [str(seed_tar), "--expect-file", str(listing), "--expect-manifest", str(tmp_path / "index.json")],
        tmp_path / "serve.log",
    )
    try:
        text = (tmp_path / "serve.log").read_text()
        assert "busybox:1.36 has no digest" in text and "multi-platform index" in text
        data = _skopeo_pull(f"{server.host}/registry@{index_digest}", tmp_path / "pulled")
        assert data == child  # skopeo resolved the index to its linux/amd64 child, which we reproduced
        accept = {"Accept": ", ".join(sorted(mt.ALL_MANIFESTS))}
        r = httpx.get(f"http://{server.host}/v2/registry/manifests/{index_digest}", headers=accept)
        assert r.status_code == 200 and r.content == (tmp_path / "index.json").read_bytes()
        r = httpx.get(f"http://{server.host}/v2/registry/manifests/{other_digest}", headers=accept)
        assert r.status_code == 404  # the other platform's child is not in the archive; nothing pretends it is
    finally:
        server.stop()


def test_regtui_diff_against_another_regtui_over_tls(seed_tar, pushed, tmp_path):
    """Another regtui, serving the recovered digest over HTTPS with a self-signed certificate (trusted via --ca)."""
    indent3 = pushed["docker-indent3"]
    server = RegtuiServe(
        [str(seed_tar), "--tls-self-signed", "--host", "127.0.0.1", "--expect", f"registry:2.8.1@{indent3}"],
        tmp_path / "serve.log",
        scheme="https",
    )
    try:
        cert = next(
            line.split(": ")[-1]
            for line in (tmp_path / "serve.log").read_text().splitlines()
            if line.startswith("TLS: self-signed")
        )
        p = subprocess.run(
            [*REGTUI, "diff", "--ca", cert, str(seed_tar), f"{server.host}/registry:2.8.1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"upstream  {server.host}/registry:2.8.1: {indent3}" in p.stdout
        assert "match: " in p.stdout and "as docker push writes it" in p.stdout
        assert "verdict: same content, different serialization" in p.stdout
    finally:
        server.stop()


def test_regtui_diff_follows_the_bearer_token_flow(registry, pushed, seed_tar, tmp_path):
    """docker-registry in token mode (as Docker Hub works): 401 + WWW-Authenticate, token, then the manifest."""
    with (
        TokenServer(tmp_path / "token", anonymous=("pull",)) as tokens,
        DistributionRegistry(tmp_path / "guarded", storage=registry.storage, token=tokens.registry_config()) as guarded,
    ):
        assert httpx.get(f"{guarded.url}/v2/registry/manifests/docker-indent3").status_code == 401
        p = subprocess.run(
            [*REGTUI, "diff", str(seed_tar), f"{guarded.host}/registry:docker-indent3"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stdout + p.stderr
        assert pushed["docker-indent3"] in p.stdout and "verdict: same content, different serialization" in p.stdout
        assert any(
            r["scopes"] == ["repository:registry:pull"] and r["service"] == "regtui-test" for r in tokens.requests
        )
