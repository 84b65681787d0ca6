"""Name normalisation as docker clients do it, and content negotiation as distribution does it."""

from __future__ import annotations

import pytest

from regtui.oci import mediatypes as mt
from regtui.oci import open_archive
from regtui.oci.negotiate import choose, parse_accept
from regtui.oci.refs import aliases, familiar, parse_ref


@pytest.mark.parametrize(
    "name,fam",
    [
        ("docker.io/library/registry", "registry"),
        ("library/registry", "registry"),
        ("registry", "registry"),
        ("index.docker.io/foo/bar", "foo/bar"),
        ("ghcr.io/foo/bar", "ghcr.io/foo/bar"),
        ("localhost:5000/x", "localhost:5000/x"),
    ],
)
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
    lines = [
        "application/vnd.oci.image.manifest.v1+json",
        f"{mt.DOCKER_MANIFEST}, {mt.DOCKER_LIST};q=0.9",
        "application/vnd.oci.image.index.v1+json;q=0",
    ]
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


# -- one reference parser for push, diff and the archive side (regtui.oci.refs) -------------------------------

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text,host,path,tag,digest",
    [
        ("localhost:5000/x", "localhost:5000", "x", "latest", None),
        ("localhost/x", "localhost", "x", "latest", None),
        ("docker.io/registry:2.8.1", "registry-1.docker.io", "library/registry", "2.8.1", None),
        ("index.docker.io/library/registry", "registry-1.docker.io", "library/registry", "latest", None),
        ("registry-1.docker.io/bitnami/redis:7", "registry-1.docker.io", "bitnami/redis", "7", None),
        ("docker.io", "registry-1.docker.io", "library/docker.io", "latest", None),  # a name, as docker reads it
        ("bitnami/redis", "registry-1.docker.io", "bitnami/redis", "latest", None),
        (f"host:5000/a/b:tag@{D}", "host:5000", "a/b", "tag", D),
        (f"host.example/a/b@{D}", "host.example", "a/b", None, D),
        ("[::1]:5000/x:1", "[::1]:5000", "x", "1", None),
        ("[2001:db8::1]/team/app", "[2001:db8::1]", "team/app", "latest", None),
        ("Registry.Example:443/app", "registry.example:443", "app", "latest", None),
        ("https://r.example/app:1", "r.example", "app", "1", None),
        ("docker://r.example/app:1", "r.example", "app", "1", None),
    ],
)
def test_remote_reference_edge_cases(text, host, path, tag, digest):
    from regtui.oci.refs import parse_remote

    r = parse_remote(text)
    assert (r.host, r.path, r.tag, r.digest) == (host, path, tag, digest)
    assert r.reference == (digest or tag)
    assert str(r) == f"{host}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def test_remote_reference_scheme_and_errors():
    from regtui.oci.refs import parse_remote

    assert parse_remote("http://127.0.0.1:5000/x").scheme == "http"
    assert parse_remote("127.0.0.1:5000/x").scheme is None
    for bad, msg in [
        ("[::1:5000/x", "unterminated IPv6"),
        ("host:5000/A", "invalid repository name"),
        ("host/x:-t", "invalid tag"),
        ("host/x@sha256:12", "invalid digest"),
        ("host/", "repository"),
    ]:
        with pytest.raises(ValueError, match=msg):
            parse_remote(bad)


@pytest.mark.parametrize(
    "text,name",
    [
        ("localhost:5000/x:1", "localhost:5000/x"),
        ("docker.io/library/registry:2.8.1", "registry"),
        ("index.docker.io/library/registry", "registry"),
        (f"host:5000/a/b:tag@{D}", "host:5000/a/b"),
        ("[::1]:5000/x:1", "[::1]:5000/x"),
    ],
)
def test_archive_side_references_agree_on_the_host(text, name):
    """parse_ref keeps names as the archive and clients write them (familiar form); the host part is the same
    first component parse_remote and push's targets take for a host."""
    from regtui.oci.refs import is_domain, parse_ref, parse_remote

    ref = parse_ref(text)
    assert ref.name == name
    first = text.split("/", 1)[0]
    assert is_domain(first)
    remote = parse_remote(text)
    assert remote.host in (first.lower(), "registry-1.docker.io")


@pytest.mark.parametrize(
    "text,host",
    [
        ("localhost:5000/team", "localhost:5000"),
        ("docker.io", "registry-1.docker.io"),
        ("index.docker.io/someone", "registry-1.docker.io"),
        ("[::1]:5000", "[::1]:5000"),
        ("HTTPS://Registry.Example/team", "registry.example"),
    ],
)
def test_push_targets_use_the_same_host_rules(text, host):
    from regtui.push.names import parse_target

    assert parse_target(text).host == host
