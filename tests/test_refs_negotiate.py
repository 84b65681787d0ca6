"""Name normalisation as docker clients do it, and content negotiation as distribution does it."""

from __future__ import annotations

import pytest

from regtui.oci import mediatypes as mt
from regtui.oci import open_archive
from regtui.oci.negotiate import choose, parse_accept
from regtui.oci.refs import aliases, familiar, parse_ref


@pytest.mark.parametrize("name,fam", [
    ("docker.io/library/registry", "registry"), ("library/registry", "registry"), ("registry", "registry"),
    ("index.docker.io/foo/bar", "foo/bar"), ("ghcr.io/foo/bar", "ghcr.io/foo/bar"),
    ("localhost:5000/x", "localhost:5000/x"),
])
def test_familiar(name, fam):
    assert familiar(name) == fam


def test_aliases():
    assert aliases("registry") == ["registry", "library/registry", "docker.io/library/registry"]
    assert aliases("foo/bar") == ["foo/bar", "docker.io/foo/bar"]
    assert aliases("ghcr.io/foo/bar") == ["ghcr.io/foo/bar", "foo/bar"]


def test_parse_ref():
    r = parse_ref("docker.io/library/registry:2.8.1@sha256:" + "a" * 64)
    assert (r.name, r.tag, r.digest) == ("registry", "2.8.1", "sha256:" + "a" * 64)
    assert parse_ref("localhost:5000/x").tag is None
    assert parse_ref("localhost:5000/x:1").name == "localhost:5000/x"
    for bad in ("Upper", "a//b", "x:bad tag", "x@sha256:zz!", ""):
        with pytest.raises(ValueError):
            parse_ref(bad)


def test_parse_accept_merges_lines_and_lists():
    lines = ["application/vnd.oci.image.manifest.v1+json", f"{mt.DOCKER_MANIFEST}, {mt.DOCKER_LIST};q=0.9",
             "application/vnd.oci.image.index.v1+json;q=0"]
    assert parse_accept(lines) == [mt.OCI_MANIFEST, mt.DOCKER_MANIFEST, mt.DOCKER_LIST]


def test_negotiation_on_synthesized_manifest(seed_tar):
    [img] = open_archive(str(seed_tar)).images()
    docker, oci = img.manifests
    assert choose(img, []).manifest is docker  # no Accept: the default form
    assert choose(img, ["*/*"]).manifest is docker
    assert choose(img, [mt.OCI_MANIFEST]).manifest is oci
    # Both accepted: the default form, so every client (and crane) sees one digest for the tag.
    assert choose(img, [mt.OCI_MANIFEST, mt.DOCKER_MANIFEST]).manifest is docker
    refused = choose(img, [mt.DOCKER_SCHEMA1_SIGNED])
    assert refused.manifest is None and "schema1" not in (refused.manifest or "")
    assert mt.DOCKER_MANIFEST in refused.reason
