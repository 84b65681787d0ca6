"""Push without a registry: target names, --tag-map, the plan built from the model, docker config.json."""

from __future__ import annotations

import base64
import json
import os

import pytest

from regtui.oci import open_archive
from regtui.oci.model import ImageIndex
from regtui.push.errors import PushError
from regtui.push.names import map_tag, parse_tag_map, parse_target
from regtui.push.plan import build_plan
from regtui.remote.auth import parse_challenge
from regtui.remote.credentials import docker_credentials


@pytest.mark.parametrize(
    "text,host,prefix,loopback",
    [
        ("127.0.0.1:5000", "127.0.0.1:5000", "", True),
        ("localhost:5000/team/sub", "localhost:5000", "team/sub", True),
        ("[::1]:5000/x", "[::1]:5000", "x", True),
        ("127.8.9.10", "127.8.9.10", "", True),
        ("registry.example.com/mirror", "registry.example.com", "mirror", False),
        ("10.0.0.5:443", "10.0.0.5:443", "", False),
        ("docker.io/someone", "registry-1.docker.io", "someone", False),
    ],
)
def test_targets(text, host, prefix, loopback):
    t = parse_target(text)
    assert (t.host, t.prefix, t.is_loopback) == (host, prefix, loopback)


def test_target_scheme_and_bad_prefix():
    assert parse_target("https://127.0.0.1:5000/").scheme == "https"
    with pytest.raises(PushError, match="prefix 'Team' is not a valid"):
        parse_target("registry.local/Team")
    with pytest.raises(PushError, match="empty"):
        parse_target("  ")


def test_tag_map_rules():
    rules = parse_tag_map(
        ["docker.io/library/registry:2.8.1=mirror/registry:stable", "busybox=tools/busybox", "registry:2.8.2=:latest"]
    )
    assert map_tag(rules, "registry", "2.8.1") == ("mirror/registry", "stable")
    assert map_tag(rules, "registry", "2.8.2") == ("registry", "latest")
    assert map_tag(rules, "registry", "2.9") == ("registry", "2.9")
    assert map_tag(rules, "busybox", "1.36") == ("tools/busybox", "1.36")
    for bad, msg in [
        ("nope", "expected OLD=NEW"),
        ("a=B", "invalid repository"),
        ("a=b:c", "OLD must name one tag"),
        ("a:!x=b", "invalid tag"),
    ]:
        with pytest.raises(PushError, match=msg):
            parse_tag_map([bad])


def test_plan_seed_image(seed_tar):
    archive = open_archive(seed_tar)
    plan = build_plan(archive, parse_target("127.0.0.1:5000/team"))
    [rp] = plan.repos
    img = archive.roots[0]
    assert rp.repo == "team/registry"
    assert list(rp.tags) == ["2.8.1"]
    assert rp.tags["2.8.1"].digest == img.manifests[0].digest  # the default form regtui serves
    assert [m.digest for m in rp.manifests] == [img.manifests[0].digest]
    expected = {img.config.descriptor.digest, *(l.digest for l in img.layers)}
    assert set(rp.blobs) == expected
    assert all(b.location is not None and b.size == b.location.size for b in rp.blobs.values())
    assert plan.total_bytes() == sum(archive.blobs[d].size for d in expected)


def test_plan_multiarch_children_first(multiarch_tar):
    archive = open_archive(multiarch_tar)
    plan = build_plan(archive, parse_target("localhost:1"), parse_tag_map(["registry:2.8.1=multi/registry:v1"]))
    [rp] = plan.repos
    index = archive.roots[0]
    assert isinstance(index, ImageIndex)
    assert rp.repo == "multi/registry" and list(rp.tags) == ["v1"]
    digests = [m.digest for m in rp.manifests]
    assert digests[-1] == index.manifest.digest
    assert set(digests[:-1]) == {c.manifests[0].digest for c in index.children} and len(digests) == 3
    configs = {i.config.descriptor.digest for i in index.images()}
    assert configs <= set(rp.blobs) and len(configs) == 2


def test_plan_errors(seed_tar):
    archive = open_archive(seed_tar)
    with pytest.raises(PushError, match="the archive has no busybox") as e:
        build_plan(archive, parse_target("localhost:1"), parse_tag_map(["busybox=x"]))
    assert "registry:2.8.1" in e.value.line()


def test_docker_config_credentials(tmp_path, monkeypatch):
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "auths": {
                    "https://registry.example.com": {"auth": base64.b64encode(b"alice:s3:cret").decode()},
                    "other.example.com:5000": {"username": "bob", "password": "pw"},
                    "https://index.docker.io/v1/": {"identitytoken": "refresh-me"},
                },
                "credHelpers": {"helped.example.com": "regtui-test-absent"},
            }
        )
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    c = docker_credentials("registry.example.com")
    assert (c.username, c.password, c.source) == ("alice", "s3:cret", str(cfg))
    assert docker_credentials("other.example.com:5000").username == "bob"
    assert docker_credentials("registry-1.docker.io").identity_token == "refresh-me"
    assert docker_credentials("unknown.example.com") is None
    with pytest.raises(PushError, match="docker-credential-regtui-test-absent, which is not installed") as e:
        docker_credentials("helped.example.com")
    assert "--password-stdin" in e.value.line()


def test_docker_config_credential_helper_runs(tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-regtuitest"
    helper.parent.mkdir()
    helper.write_text(
        '#!/bin/sh\nread host\necho "{\\"ServerURL\\":\\"$host\\",\\"Username\\":\\"carol\\",'
        '\\"Secret\\":\\"from-helper\\"}"\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "regtuitest"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    c = docker_credentials("registry.example.com")
    assert (c.username, c.password) == ("carol", "from-helper")


def test_bad_auth_field(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(PushError, match="not base64 of user:password"):
        docker_credentials("r.example")


def test_parse_challenge():
    ch = parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"')
    assert ch.scheme == "bearer"
    assert ch.params == {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"').scheme == "basic"
