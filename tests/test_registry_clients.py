"""Real clients pull from `regtui serve`: skopeo (inspect, copy to oci: and dir:) and containerd's ctr (content
fetch, image pull), by tag and by digest, for the seed image, its OCI variant and a multi-arch index.
Every pulled blob is re-hashed and compared with what the archive's model says the image holds.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from regtui.oci.model import ImageIndex
from regtui.oci.negotiate import DEFAULT_PLATFORM, select_platform
from tests.helpers.containerd import running_containerd
from tests.helpers.registry_harness import running_registry, wait_for
from tests.helpers.support import require_tool

REPO, TAG = "registry", "2.8.1"
SUBJECTS = ["seed_tar", "oci_tar", "multiarch_tar"]


@pytest.fixture(scope="module", params=SUBJECTS)
def served(request):
    archive = request.getfixturevalue(request.param)
    with running_registry([archive]) as reg:
        reg.name = request.param
        yield reg


def _root(reg):
    return reg.archives[0].tags()[(REPO, TAG)]


def _default_image(reg):
    root = _root(reg)
    return select_platform(root, DEFAULT_PLATFORM) if isinstance(root, ImageIndex) else root


def _ref(reg, by: str, sep: str = ":") -> str:
    if by == "tag":
        return f"{reg.host}/{REPO}:{TAG}"
    return f"{reg.host}/{REPO}@{_root(reg).manifests[0].digest}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _image_blobs(image) -> set[str]:
    return {image.config.descriptor.digest, *(l.digest for l in image.layers)}


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


# -- skopeo ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_skopeo_inspect(served, by):
    skopeo = require_tool("skopeo")
    root = _root(served)
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{_ref(served, by)}"],
        capture_output=True,
        timeout=60,
    )
    assert raw.returncode == 0, raw.stderr
    # skopeo accepts every type: it gets the default form, byte for byte.
    assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == root.manifests[0].digest
    info = json.loads(run([skopeo, "inspect", "--tls-verify=false", f"docker://{_ref(served, by)}"]).stdout)
    image = _default_image(served)
    assert info["Digest"] == root.manifests[0].digest
    assert info["Architecture"] == image.platform.architecture
    assert set(info["Layers"]) == {l.digest for l in image.layers}
    if by == "tag":
        assert info["RepoTags"] == [TAG]


def _check_oci_layout(out: Path) -> set[str]:
    """Re-hash every blob of an OCI layout; return the digests of all blobs the manifests reference."""
    blobs = out / "blobs" / "sha256"
    for f in blobs.iterdir():
        assert _sha256(f) == f"sha256:{f.name}", f"blob {f.name} does not hash to its name"
    referenced: set[str] = set()

    def walk(desc):
        data = (blobs / desc["digest"].split(":")[1]).read_bytes()
        doc = json.loads(data)
        if "manifests" in doc:
            for child in doc["manifests"]:
                walk(child)
        else:
            for d in [doc["config"], *doc["layers"]]:
                assert (blobs / d["digest"].split(":")[1]).exists(), f"{d['digest']} missing"
                assert (blobs / d["digest"].split(":")[1]).stat().st_size == d["size"]
                referenced.add(d["digest"])

    for desc in json.loads((out / "index.json").read_text())["manifests"]:
        walk(desc)
    return referenced


def _check_dir(out: Path) -> set[str]:
    manifest = json.loads((out / "manifest.json").read_text())
    hashed = 0
    for f in out.iterdir():
        if len(f.name) == 64:
            assert _sha256(f) == f"sha256:{f.name}", f"blob {f.name} does not hash to its name"
            hashed += 1
    digests = {d["digest"] for d in [manifest["config"], *manifest["layers"]]}
    for d in digests:
        assert (out / d.split(":")[1]).exists(), f"{d} missing from the dir: copy"
    assert hashed >= len(digests)
    return digests


@pytest.mark.parametrize("transport", ["oci", "dir"])
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_skopeo_copy(served, transport, by, tmp_path):
    skopeo = require_tool("skopeo")
    out = tmp_path / "out"
    multi = isinstance(_root(served), ImageIndex)
    dest = f"oci:{out}:copied" if transport == "oci" else f"dir:{out}"
    extra = ["--all"] if multi and transport == "oci" else []
    run([skopeo, "copy", "-q", *extra, "--src-tls-verify=false", f"docker://{_ref(served, by)}", dest])
    if transport == "oci":
        got = _check_oci_layout(out)
        images = _root(served).images() if multi else [_root(served)]
        layers = {l.digest for i in images for l in i.layers}
        # skopeo rewrites a Docker config when it converts the manifest to OCI; layers pass through as served.
        assert layers <= got and len(got - layers) == len({i.config.descriptor.digest for i in images})
    else:
        assert _check_dir(out) == _image_blobs(_default_image(served))
    # The pull was seen as one group that completed, with every blob byte counted.
    pulls = wait_for(
        lambda: [
            p
            for p in served.of_pulls()
            if p.finished and p.blobs_done == p.blobs_total and p.blobs_total and p.user_agent.startswith("skopeo")
        ]
    )
    assert pulls, "no completed pull event"


# -- containerd -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    with running_containerd(tmp_path_factory.mktemp("containerd")) as sock:
        yield sock


def _ctr(sock: str, ns: str, *args: str) -> subprocess.CompletedProcess:
    return run(["ctr", "--address", sock, "-n", ns, *args])


def _check_ctr_content(sock: str, ns: str, expected: set[str]) -> None:
    listed = _ctr(sock, ns, "content", "ls", "-q").stdout.split()
    assert expected <= set(listed), f"missing from containerd: {expected - set(listed)}"
    for digest in expected:
        data = subprocess.run(
            ["ctr", "--address", sock, "-n", ns, "content", "get", digest], capture_output=True, timeout=60, check=True
        ).stdout
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest


def _namespace(reg, what: str, by: str) -> str:
    return f"{what}-{reg.name}-{by}-{reg.port}".replace("_", "-")


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_ctr_content_fetch(served, containerd, by):
    ns = _namespace(served, "fetch", by)
    root = _root(served)
    multi = isinstance(root, ImageIndex)
    _ctr(containerd, ns, "content", "fetch", "--plain-http", *(["--all-platforms"] if multi else []), _ref(served, by))
    images = root.images() if multi else [root]
    expected = set().union(*(_image_blobs(i) for i in images)) | {root.manifests[0].digest}
    _check_ctr_content(containerd, ns, expected)


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_ctr_image_pull(served, containerd, by):
    ns = _namespace(served, "pull", by)
    ref = _ref(served, by)
    _ctr(containerd, ns, "image", "pull", "--plain-http", "--snapshotter", "native", ref)
    listed = _ctr(containerd, ns, "image", "ls", "-q").stdout.split()
    assert ref in listed
    image = _default_image(served)
    _check_ctr_content(containerd, ns, _image_blobs(image) | {_root(served).manifests[0].digest})
    # containerd resolves the tag with HEAD, then GETs the manifest by digest (REFERENCE.md).
    heads = [
        e
        for e in served.events
        if type(e).__name__ == "RequestStarted" and e.method == "HEAD" and e.user_agent.startswith("containerd")
    ]
    assert heads
    # ...and that HEAD + GET-by-digest + blob GETs are grouped as one pull of this reference, to completion.
    reference = ref.rsplit("@", 1)[1] if by == "digest" else TAG
    done = wait_for(
        lambda: [
            p
            for p in served.of_pulls()
            if p.user_agent.startswith("containerd")
            and p.reference == reference
            and p.finished
            and p.blobs_total
            and p.blobs_done == p.blobs_total
        ]
    )
    assert done and done[-1].bytes_done == done[-1].bytes_total == sum(
        max(0, d.size) for d in [image.config.descriptor, *(l.descriptor for l in image.layers)]
    )


# -- TLS and auth with a real client ----------------------------------------------------------------------
def test_skopeo_over_tls_with_auth(seed_tar, tmp_path):
    import bcrypt

    from regtui.registry.server import TLS
    from regtui.registry.tls import self_signed

    skopeo = require_tool("skopeo")
    certs = tmp_path / "certs"
    certs.mkdir()
    certfile, keyfile, _ = self_signed("127.0.0.1", str(tmp_path))
    (certs / "ca.crt").write_bytes(Path(certfile).read_bytes())
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("puller:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=5)).decode() + "\n")
    with running_registry([seed_tar], tls=TLS(certfile, keyfile), htpasswd=str(htpasswd)) as reg:
        ref = f"docker://{reg.host}/{REPO}:{TAG}"
        # Certificate verified against the generated CA; no credentials -> refused.
        r = subprocess.run(
            [skopeo, "inspect", "--cert-dir", str(certs), ref], capture_output=True, text=True, timeout=60
        )
        assert r.returncode != 0 and ("401" in r.stderr or "authentication" in r.stderr.lower())
        out = tmp_path / "out"
        run([skopeo, "copy", "-q", "--src-cert-dir", str(certs), "--src-creds", "puller:pw", ref, f"dir:{out}"])
        assert _check_dir(out) == _image_blobs(_root(reg))
