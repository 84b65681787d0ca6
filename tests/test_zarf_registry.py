"""A compressed Zarf package served by `regtui serve` and pulled by real skopeo and containerd: every image by
its original name, by the name Zarf's agent rewrites pods to, and by digest under the rewritten path; every
pulled blob re-hashed."""

from __future__ import annotations

import zlib

import httpx
import pytest

from regtui.oci.model import ImageIndex
from tests.helpers.containerd import running_containerd
from tests.helpers.registry_harness import running_registry
from tests.helpers.support import require_tool
from tests.helpers.zarf_fixtures import ALPINE_DIGEST
from tests.test_registry_clients import _check_ctr_content, _check_oci_layout, _image_blobs, run

# original reference -> (path Zarf pushes to, crc of the full name)
IMAGES = {
    "docker.io/library/registry:2.8.1": "library/registry",
    "docker.io/library/alpine:3.20": "library/alpine",
    "ghcr.io/example/multi:1.0": "example/multi",
}


def _crc(ref: str) -> int:
    return zlib.crc32(ref.rsplit(":", 1)[0].encode())


@pytest.fixture(scope="module")
def served(zarf_forms, tmp_path_factory):
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    try:
        with running_registry([zarf_forms["tar.zst"]]) as reg:
            yield reg
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old


def _root(reg, original: str):
    pkg = reg.archives[0].package
    return next(i.root for i in pkg.images if i.name.original == original)


def refs(original: str) -> dict[str, str]:
    """by -> reference without host: the original name, the Zarf-rewritten one, digest under the rewritten path."""
    path = IMAGES[original]
    tag = original.rsplit(":", 1)[1]
    return {"original": original, "zarf": f"{path}:{tag}-zarf-{_crc(original)}", "digest": f"{path}@"}


def _ref(reg, original: str, by: str) -> str:
    r = refs(original)[by]
    if by == "digest":
        r += _root(reg, original).manifests[0].digest
    return f"{reg.host}/{r}"


def test_rewritten_tags_listed_and_resolved(served):
    with httpx.Client(base_url=served.url) as c:
        tags = c.get("/v2/library/alpine/tags/list").json()["tags"]
        assert f"3.20-zarf-{_crc('docker.io/library/alpine:3.20')}" in tags
        # Zarf's own test vector, applied to the path it would push to: the tag must carry this exact crc.
        assert _crc("docker.io/library/nginx:1.23.3") == 3793515731
        r = c.head(
            f"/v2/example/multi/manifests/1.0-zarf-{_crc('ghcr.io/example/multi:1.0')}",
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        )
        assert r.status_code == 200
        assert r.headers["Docker-Content-Digest"] == _root(served, "ghcr.io/example/multi:1.0").manifests[0].digest
        # The pinned (by-digest) image answers by digest under the rewritten path, and a wrong crc is unknown.
        assert c.head(f"/v2/library/alpine/manifests/{ALPINE_DIGEST}").status_code == 200
        assert c.head("/v2/library/alpine/manifests/3.20-zarf-1").status_code == 404


@pytest.mark.parametrize("original", list(IMAGES))
@pytest.mark.parametrize("by", ["original", "zarf", "digest"])
def test_skopeo_copies_every_image(served, original, by, tmp_path):
    skopeo = require_tool("skopeo")
    root = _root(served, original)
    multi = isinstance(root, ImageIndex)
    out = tmp_path / "out"
    run(
        [
            skopeo,
            "copy",
            "-q",
            *(["--all"] if multi else []),
            "--src-tls-verify=false",
            f"docker://{_ref(served, original, by)}",
            f"oci:{out}:copied",
        ]
    )
    got = _check_oci_layout(out)  # every blob re-hashed
    images = root.images() if multi else [root]
    assert {layer.digest for i in images for layer in i.layers} <= got


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    with running_containerd(tmp_path_factory.mktemp("containerd")) as sock:
        yield sock


@pytest.mark.parametrize("original", list(IMAGES))
@pytest.mark.parametrize("by", ["original", "zarf", "digest"])
def test_ctr_pulls_every_image(served, containerd, original, by):
    ns = f"zarf-{by}-{IMAGES[original].replace('/', '-')}"
    ref = _ref(served, original, by)
    run(["ctr", "--address", containerd, "-n", ns, "image", "pull", "--plain-http", "--snapshotter", "native", ref])
    assert ref in run(["ctr", "--address", containerd, "-n", ns, "image", "ls", "-q"]).stdout.split()
    root = _root(served, original)
    image = (
        next(i for i in root.images() if i.platform and i.platform.architecture == "amd64")
        if isinstance(root, ImageIndex)
        else root
    )
    _check_ctr_content(containerd, ns, _image_blobs(image) | {root.manifests[0].digest})


def test_served_from_the_cache_not_memory(served):
    # Blobs of a compressed package are read from the unpacked cache folder, by offset, like any archive.
    a = served.archives[0]
    assert a.package.form == "tar.zst" and a.package.cache_path
    assert all(loc.path.startswith(a.package.cache_path) for loc in a.blobs.values())
