"""`regtui push` against the real Debian docker-registry: plain HTTP, htpasswd basic auth, TLS with a test CA,
bearer tokens, cross-repository mounts, dry runs, broken connections and resumption; skopeo pulls back
every tag and digest and every blob is re-hashed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from regtui.oci import open_archive
from regtui.oci.model import ImageIndex
from tests.helpers.distribution import (
    DistributionRegistry,
    TokenServer,
    make_ca,
    write_htpasswd,
)
from tests.helpers.push_support import CuttingProxy, add_big_layer, pull_and_rehash, skopeo

PLAIN = ["--src-tls-verify=false"]


def push(
    *args: str, stdin: str | None = None, docker_config: Path | None = None, timeout: int = 180
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("REGTUI_DEBUG", None)
    if docker_config is not None:
        env["DOCKER_CONFIG"] = str(docker_config)
    return subprocess.run(
        [sys.executable, "-m", "regtui", "push", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def assert_one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [l for l in r.stderr.splitlines() if l.startswith("regtui: error:")]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def no_docker_config(tmp_path) -> Path:
    d = tmp_path / "docker-config"
    d.mkdir()
    return d


@pytest.fixture
def registry(tmp_path):
    with DistributionRegistry(tmp_path / "registry") as reg:
        yield reg


def manifest_digests(reg: DistributionRegistry, repo: str, ref: str, media_type: str, verify=False) -> str:
    r = httpx.head(f"{reg.url}/v2/{repo}/manifests/{ref}", headers={"Accept": media_type}, verify=verify)
    assert r.status_code == 200, (repo, ref, r.status_code)
    return r.headers["docker-content-digest"]


def test_push_seed_image_plain_http(registry, seed_tar, tmp_path, no_docker_config):
    archive = open_archive(seed_tar)
    image = archive.roots[0]
    ours = image.manifests[0]
    r = push(seed_tar, f"{registry.host}/team", docker_config=no_docker_config)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("pushed 6 blobs")
    assert manifest_digests(registry, "team/registry", "2.8.1", ours.media_type) == ours.digest

    # skopeo pulls the tag and the digest; every blob re-hashes; the manifest bytes are ours.
    by_tag = pull_and_rehash(f"{registry.host}/team/registry:2.8.1", tmp_path / "by-tag", tls_args=PLAIN)
    by_digest = pull_and_rehash(f"{registry.host}/team/registry@{ours.digest}", tmp_path / "by-digest", tls_args=PLAIN)
    assert by_tag == by_digest == ours.data
    pulled = {p.name for p in (tmp_path / "by-tag").iterdir() if len(p.name) == 64}
    assert pulled == {d.split(":")[1] for d in [image.config.descriptor.digest, *(l.digest for l in image.layers)]}
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/team/registry:2.8.1").stdout)
    assert info["Digest"] == ours.digest

    # A second run finds everything in place and sends nothing.
    again = push(seed_tar, f"{registry.host}/team", "--quiet", docker_config=no_docker_config)
    assert again.returncode == 0, again.stderr
    assert "pushed 0 blobs (0 B sent)" in again.stdout and "6 already there" in again.stdout


def test_push_multiarch_index(registry, multiarch_tar, tmp_path, no_docker_config):
    archive = open_archive(multiarch_tar)
    index = archive.roots[0]
    assert isinstance(index, ImageIndex)
    r = push(
        multiarch_tar,
        registry.host,
        "--tag-map",
        "registry:2.8.1=multi/registry:v1",
        "--jobs",
        "2",
        docker_config=no_docker_config,
    )
    assert r.returncode == 0, r.stderr
    # Children went up before the index, the tag last.
    lines = [l for l in r.stdout.splitlines() if l.startswith("pushed ") and " blobs " not in l]
    refs = [l.split()[2] for l in lines]
    child_refs = [f"multi/registry@{c.manifests[0].digest[:19]}" for c in index.children]
    assert refs[-1] == "multi/registry:v1" and refs[-2] == f"multi/registry@{index.manifest.digest[:19]}"
    assert sorted(refs[:2]) == sorted(child_refs)

    assert manifest_digests(registry, "multi/registry", "v1", index.manifest.media_type) == index.manifest.digest
    top = pull_and_rehash(f"{registry.host}/multi/registry:v1", tmp_path / "all", tls_args=PLAIN, all_images=True)
    assert top == index.manifest.data
    for i, child in enumerate(index.children):
        m = child.manifests[0]
        assert manifest_digests(registry, "multi/registry", m.digest, m.media_type) == m.digest
        got = pull_and_rehash(f"{registry.host}/multi/registry@{m.digest}", tmp_path / f"child{i}", tls_args=PLAIN)
        assert hashlib.sha256(got).hexdigest() == m.digest.split(":")[1]
    by_digest = pull_and_rehash(
        f"{registry.host}/multi/registry@{index.manifest.digest}", tmp_path / "idx", tls_args=PLAIN, all_images=True
    )
    assert by_digest == index.manifest.data


def two_names(oci_dir: Path, layout: Path) -> Path:
    """The same image under two names (registry:2.8.1, mirror/registry:2.8.1): blobs shared across repos."""
    shutil.copytree(oci_dir, layout)
    index = json.loads((layout / "index.json").read_text())
    second = json.loads(json.dumps(index["manifests"][0]))
    second["annotations"]["org.opencontainers.image.ref.name"] = "mirror/registry:2.8.1"
    index["manifests"].append(second)
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def test_cross_repository_mount(registry, oci_dir, tmp_path, no_docker_config):
    layout = two_names(oci_dir, tmp_path / "two-names")
    archive = open_archive(layout)
    assert sorted(archive.repositories()) == ["mirror/registry", "registry"]

    r = push(layout, registry.host, "--jobs", "1", docker_config=no_docker_config)
    assert r.returncode == 0, r.stderr
    blobs = len(archive.blob_digests(archive.roots[0])) - 1  # minus the manifest
    uploaded = [l for l in r.stdout.splitlines() if l.startswith("uploaded")]
    mounted = [l for l in r.stdout.splitlines() if l.startswith("mounted")]
    assert len(uploaded) == len(mounted) == blobs
    assert len(registry.requests("POST", "mount=")) == blobs
    assert f"mounted {blobs}" in r.stdout
    for repo in ("registry", "mirror/registry"):
        m = archive.roots[0].manifests[0]
        assert manifest_digests(registry, repo, "2.8.1", m.media_type) == m.digest


def test_dry_run_lists_and_sends_nothing(registry, seed_tar, no_docker_config):
    r = push(seed_tar, registry.host, "--dry-run", docker_config=no_docker_config)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sum(l.startswith("would upload") for l in lines) == 6
    assert any(l.startswith("would push") and "registry:2.8.1" in l for l in lines)
    assert lines[-1].startswith("dry run: 6 blobs to upload")
    for method in ("POST", "PUT", "PATCH"):
        assert registry.requests(method) == []

    assert push(seed_tar, registry.host, "-q", docker_config=no_docker_config).returncode == 0
    r = push(seed_tar, registry.host, "--dry-run", docker_config=no_docker_config)
    lines = r.stdout.splitlines()
    assert sum(l.startswith("already there") for l in lines) == 6 + 0
    assert sum(l.startswith("up to date") for l in lines) == 2
    assert lines[-1].startswith("dry run: 0 blobs to upload (0 B), 6 already there")


def test_htpasswd_basic_auth(tmp_path, seed_tar, no_docker_config):
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "correct horse"})
    with DistributionRegistry(tmp_path / "reg", htpasswd=htpasswd) as reg:
        wrong = push(
            seed_tar,
            reg.host,
            "--username",
            "alice",
            "--password-stdin",
            stdin="wrong\n",
            docker_config=no_docker_config,
        )
        assert_one_line_error(wrong, "authentication failed", "'alice'", reg.host)
        assert wrong.returncode == 1
        anon = push(seed_tar, reg.host, docker_config=no_docker_config)
        assert_one_line_error(anon, "requires a login", "--password-stdin")

        ok = push(
            seed_tar,
            reg.host,
            "--username",
            "alice",
            "--password-stdin",
            stdin="correct horse\n",
            docker_config=no_docker_config,
        )
        assert ok.returncode == 0, ok.stderr
        m = open_archive(seed_tar).roots[0].manifests[0]
        r = httpx.head(
            f"{reg.url}/v2/registry/manifests/2.8.1", headers={"Accept": m.media_type}, auth=("alice", "correct horse")
        )
        assert r.headers["docker-content-digest"] == m.digest

        # The same credentials from docker's config.json (base64 `auth` field).
        cfg = tmp_path / "docker"
        cfg.mkdir()
        auth = base64.b64encode(b"alice:correct horse").decode()
        (cfg / "config.json").write_text(json.dumps({"auths": {f"http://{reg.host}": {"auth": auth}}}))
        again = push(seed_tar, f"{reg.host}/viaconfig", docker_config=cfg)
        assert again.returncode == 0, again.stderr
        assert "pushed 6 blobs" in again.stdout


def test_tls_with_test_ca(tmp_path, seed_tar, no_docker_config):
    ca = make_ca(tmp_path / "pki")
    with DistributionRegistry(tmp_path / "reg", tls=ca) as reg:
        untrusted = push(seed_tar, f"https://{reg.host}", docker_config=no_docker_config)
        assert_one_line_error(untrusted, "TLS certificate verification failed", "--ca", "--insecure")
        plain = push(seed_tar, reg.host, docker_config=no_docker_config)  # loopback means http by default
        assert_one_line_error(plain, "speaks HTTPS", f"https://{reg.host}")

        ok = push(seed_tar, f"{reg.host}/secure", "--ca", ca.ca_pem, docker_config=no_docker_config)
        assert ok.returncode == 0, ok.stderr
        m = open_archive(seed_tar).roots[0].manifests[0]
        got = pull_and_rehash(
            f"{reg.host}/secure/registry:2.8.1",
            tmp_path / "pulled",
            tls_args=[f"--src-cert-dir={_cert_dir(ca, tmp_path)}"],
        )
        assert got == m.data
        insecure = push(seed_tar, f"https://{reg.host}/other", "--insecure", "-q", docker_config=no_docker_config)
        assert insecure.returncode == 0, insecure.stderr


def _cert_dir(ca, tmp_path: Path) -> Path:
    d = tmp_path / "skopeo-certs"
    d.mkdir(exist_ok=True)
    shutil.copy(ca.ca_pem, d / "ca.crt")
    return d


def test_bearer_token_flow(tmp_path, seed_tar, oci_dir, no_docker_config):
    with (
        TokenServer(tmp_path / "token", {"bob": "hunter2"}) as tokens,
        DistributionRegistry(tmp_path / "reg", token=tokens.registry_config()) as reg,
    ):
        wrong = push(
            seed_tar, reg.host, "--username", "bob", "--password-stdin", stdin="nope", docker_config=no_docker_config
        )
        assert_one_line_error(wrong, "authentication failed", "'bob'")
        anon = push(seed_tar, reg.host, docker_config=no_docker_config)
        assert_one_line_error(anon, "requires a login")

        ok = push(
            seed_tar,
            f"{reg.host}/tok",
            "--username",
            "bob",
            "--password-stdin",
            stdin="hunter2",
            docker_config=no_docker_config,
        )
        assert ok.returncode == 0, ok.stderr
        scopes = {s for r in tokens.requests if r.get("user") == "bob" for s in r.get("scopes", [])}
        assert "repository:tok/registry:pull,push" in scopes
        m = open_archive(seed_tar).roots[0].manifests[0]
        token = tokens.token("bob", [{"type": "repository", "name": "tok/registry", "actions": ["pull"]}])
        r = httpx.head(
            f"{reg.url}/v2/tok/registry/manifests/2.8.1",
            headers={"Accept": m.media_type, "Authorization": f"Bearer {token}"},
        )
        assert r.headers["docker-content-digest"] == m.digest

        # docker's `identitytoken` in config.json: an OAuth2 refresh-token grant (POST to the realm).
        tokens.refresh_tokens["rt-123"] = "bob"
        cfg = tmp_path / "docker"
        cfg.mkdir()
        (cfg / "config.json").write_text(json.dumps({"auths": {reg.host: {"identitytoken": "rt-123"}}}))
        refreshed = push(seed_tar, f"{reg.host}/refresh", "-q", docker_config=cfg)
        assert refreshed.returncode == 0, refreshed.stderr
        assert any(
            r.get("grant") == "refresh_token" and "repository:refresh/registry:pull,push" in r["scopes"]
            for r in tokens.requests
        )

        # Mounts ask for pull on the source repository in the same token.
        layout = two_names(oci_dir, tmp_path / "two-names")
        mounted = push(
            layout,
            f"{reg.host}/m",
            "--jobs",
            "1",
            "--username",
            "bob",
            "--password-stdin",
            stdin="hunter2",
            docker_config=no_docker_config,
        )
        assert mounted.returncode == 0, mounted.stderr
        image = open_archive(layout).roots[0]
        assert sum(l.startswith("mounted") for l in mounted.stdout.splitlines()) == 1 + len(image.layers)
        assert any(
            {"repository:m/mirror/registry:pull,push", "repository:m/registry:pull"} <= set(r["scopes"])
            for r in tokens.requests
            if r.get("scopes")
        )


@pytest.fixture
def big_layout(oci_dir, tmp_path) -> tuple[Path, str]:
    layout = tmp_path / "big-layout"
    shutil.copytree(oci_dir, layout)
    return layout, add_big_layer(layout, 40 << 20)


def test_resume_after_cut_connection(registry, big_layout, tmp_path, no_docker_config):
    layout, big = big_layout
    archive = open_archive(layout)
    image = archive.roots[0]
    big_size = archive.blobs[big].size
    small = [d for d in [image.config.descriptor.digest, *(l.digest for l in image.layers)] if d != big]
    small_bytes = sum(archive.blobs[d].size for d in small)
    proxy = CuttingProxy(registry.port)
    try:
        # One job, the big layer last: every small blob completes, then the cut lands mid big layer.
        proxy.reset(cut_after=small_bytes + big_size // 2)
        first = push(
            layout,
            f"127.0.0.1:{proxy.port}",
            "--jobs",
            "1",
            "--chunk-size",
            "8M",
            "--retries",
            "1",
            docker_config=no_docker_config,
        )
        assert proxy.cuts == 1
        assert_one_line_error(first, "uploading blob", "run the same command again")
        assert sum(l.startswith("uploaded") for l in first.stdout.splitlines()) == len(small)
        head = httpx.head(f"{registry.url}/v2/registry/blobs/{big}")
        assert head.status_code == 404  # the cut blob is not there yet

        proxy.reset()
        second = push(
            layout, f"127.0.0.1:{proxy.port}", "--jobs", "1", "--chunk-size", "8M", docker_config=no_docker_config
        )
        assert second.returncode == 0, second.stderr
        lines = second.stdout.splitlines()
        assert {l.split()[2].split("@")[1] for l in lines if l.startswith("present")} == {d[:19] for d in small}
        assert [l.split()[2] for l in lines if l.startswith("uploaded")] == [f"registry@{big[:19]}"]
        # Upstream bytes of the second run: the big layer once plus requests and manifests, no small blob.
        assert big_size <= proxy.sent < big_size + min(small_bytes, 1 << 20)
        for d in small:
            assert len(registry.requests("PUT", f"digest={d.replace(':', '%3A')}")) == 1, d
    finally:
        proxy.close()
    m = image.manifests[0]
    assert manifest_digests(registry, "registry", "2.8.1", m.media_type) == m.digest
    got = pull_and_rehash(f"{registry.host}/registry:2.8.1", tmp_path / "pulled", tls_args=PLAIN)
    assert got == m.data


def test_retry_within_a_run(registry, big_layout, tmp_path, no_docker_config):
    layout, big = big_layout
    archive = open_archive(layout)
    image = archive.roots[0]
    small = [d for d in [image.config.descriptor.digest, *(l.digest for l in image.layers)] if d != big]
    small_bytes = sum(archive.blobs[d].size for d in small)
    proxy = CuttingProxy(registry.port)
    try:
        proxy.reset(cut_after=small_bytes + archive.blobs[big].size // 3)
        r = push(layout, f"127.0.0.1:{proxy.port}", "--jobs", "1", "--chunk-size", "8M", docker_config=no_docker_config)
        assert proxy.cuts == 1
        assert r.returncode == 0, r.stderr
        assert f"retry 1: uploading blob {big[:19]}" in r.stderr
    finally:
        proxy.close()
    # The broken chunked upload was recovered; no completed blob went up twice.
    for d in small + [big]:
        assert len(registry.requests("PUT", f"digest={d.replace(':', '%3A')}")) == 1, d
    m = archive.roots[0].manifests[0]
    assert manifest_digests(registry, "registry", "2.8.1", m.media_type) == m.digest
    pull_and_rehash(f"{registry.host}/registry@{m.digest}", tmp_path / "pulled", tls_args=PLAIN)


def test_registry_refuses_a_media_type(registry, oci_dir, tmp_path, no_docker_config):
    # An image manifest with a media type distribution does not know: it answers 400 MANIFEST_INVALID.
    custom = "application/vnd.example.custom.manifest.v1+json"
    layout = tmp_path / "custom"
    shutil.copytree(oci_dir, layout)
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    manifest = json.loads((blobs / desc["digest"].split(":")[1]).read_bytes())
    manifest["mediaType"] = custom
    data = json.dumps(manifest).encode()
    hexd = hashlib.sha256(data).hexdigest()
    (blobs / hexd).write_bytes(data)
    desc.update(digest=f"sha256:{hexd}", size=len(data), mediaType=custom)
    (layout / "index.json").write_text(json.dumps(index))
    assert open_archive(layout).roots[0].manifests[0].media_type == custom
    r = push(layout, registry.host, docker_config=no_docker_config)
    assert_one_line_error(
        r, f"refused this {custom}", "MANIFEST_INVALID", f"{registry.host}/registry", "convert the archive"
    )
    assert r.returncode == 1


def test_connection_refused_and_bad_arguments(seed_tar, tmp_path, no_docker_config):
    from tests.helpers.support import free_port

    r = push(seed_tar, f"127.0.0.1:{free_port()}", docker_config=no_docker_config)
    assert_one_line_error(r, "connection refused", "is the registry running")
    assert r.returncode == 1
    r = push(tmp_path / "missing.tar", "127.0.0.1:1", docker_config=no_docker_config)
    assert_one_line_error(r, "missing.tar")
    assert r.returncode == 2  # unopenable input, as for every command
    r = push(seed_tar, "127.0.0.1:1", "--tag-map", "busybox=x", docker_config=no_docker_config)
    assert_one_line_error(r, "the archive has no busybox")
    assert r.returncode == 2
    r = push(seed_tar, "127.0.0.1:1", "--insecure", "--ca", seed_tar, docker_config=no_docker_config)
    assert_one_line_error(r, "exclude each other")
    assert r.returncode == 2


def test_push_recovered_digest(registry, seed_tar, tmp_path, no_docker_config):
    """With --expect, the serialization digest forensics recovers (docker push's 3-space indent) is what lands."""
    from regtui.oci.serializations import Variant, serialize

    image = open_archive(seed_tar).roots[0]
    data = serialize(image, Variant("docker", indent="   "))
    upstream = "sha256:" + hashlib.sha256(data).hexdigest()
    assert upstream != image.manifests[0].digest
    r = push(seed_tar, registry.host, "--expect", f"registry:2.8.1@{upstream}", docker_config=no_docker_config)
    assert r.returncode == 0, r.stderr
    assert manifest_digests(registry, "registry", "2.8.1", image.manifests[0].media_type) == upstream
    got = pull_and_rehash(f"{registry.host}/registry@{upstream}", tmp_path / "pulled", tls_args=PLAIN)
    assert got == data

    unknown = "sha256:" + "ab" * 32
    r = push(
        seed_tar, f"{registry.host}/other", "--expect", f"registry:2.8.1@{unknown}", docker_config=no_docker_config
    )
    assert_one_line_error(r, unknown, "nothing was pushed")
    assert registry.requests("POST", "/v2/other/") == []


def test_progress_bars_on_a_terminal(registry, seed_tar, no_docker_config):
    """On a TTY: rich progress bars (per blob and total); piped output (the other tests) has none."""
    import pty

    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "DOCKER_CONFIG": str(no_docker_config), "COLUMNS": "120", "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "regtui", "push", str(seed_tar), registry.host, "--chunk-size", "1M"],
        stdout=child_fd,
        stderr=child_fd,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(child_fd)
    out = b""
    while True:
        try:
            data = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(main_fd)
    assert proc.wait(60) == 0
    text = out.decode(errors="replace")
    assert "total" in text and "━" in text and "MiB" in text
    assert "\x1b[" in text  # live redraws
    assert "pushed 6 blobs" in text
