"""Focused tests of the registry's HTTP API against the real server (Hypercorn on 127.0.0.1:0), with httpx."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import ssl
import time

import bcrypt
import httpx
import pytest

from regtui.oci import mediatypes as mt
from regtui.oci import open_archive
from regtui.registry.app import create_app
from regtui.registry.auth import HtpasswdError, load_htpasswd
from regtui.registry.events import (
    EventBus,
    PullProgress,
    RequestFinished,
    RequestProgress,
    RequestStarted,
    ServerLog,
    ServerState,
)
from regtui.registry.server import TLS, BindError, serve
from regtui.registry.tls import self_signed
from tests.helpers.registry_harness import build_layout, running_registry, wait_for

MISSING = "sha256:" + "0" * 64
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def seed_reg(seed_tar):
    with running_registry([seed_tar]) as reg:
        yield reg


@pytest.fixture
def client(seed_reg):
    with httpx.Client(base_url=seed_reg.url, timeout=10) as c:
        yield c


def seed_image(reg):
    return reg.archives[0].roots[0]


def big_layer(image):
    return max(image.layers, key=lambda l: l.descriptor.size)


def error_code(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    err = body["errors"][0]
    assert {"code", "message"} <= set(err) and err["message"]
    return err["code"]


# -- base ----------------------------------------------------------------------------------------------
def test_base_and_redirect(client):
    r = client.get("/v2/")
    assert (r.status_code, r.content) == (200, b"{}")
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert r.headers["content-type"].startswith("application/json")
    h = client.head("/v2/")
    assert (h.status_code, h.headers["content-length"], h.content) == (200, "2", b"")
    r = client.get("/v2", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/v2/"


# -- manifests -----------------------------------------------------------------------------------------
def test_manifest_forms_by_accept(client, seed_reg):
    docker, oci = seed_image(seed_reg).manifests
    for accept, want in ([mt.DOCKER_MANIFEST], docker), ([mt.OCI_MANIFEST], oci), (["*/*"], docker), ([], docker):
        r = client.get("/v2/registry/manifests/2.8.1", headers=[("Accept", a) for a in accept])
        assert r.status_code == 200, accept
        assert r.headers["content-type"] == want.media_type
        assert r.headers["docker-content-digest"] == want.digest == sha(r.content)
        assert r.headers["etag"] == f'"{want.digest}"'
        assert r.headers["content-length"] == str(len(want.data))


def test_repeated_accept_lines_are_merged(client, seed_reg):
    docker = seed_image(seed_reg).manifests[0]
    # Were only the last line kept, an index-only Accept would find nothing to serve.
    r = client.get("/v2/registry/manifests/2.8.1", headers=[("Accept", mt.DOCKER_MANIFEST), ("Accept", mt.OCI_INDEX)])
    assert r.status_code == 200 and r.headers["docker-content-digest"] == docker.digest


def test_never_schema1(client):
    r = client.get("/v2/registry/manifests/2.8.1", headers={"Accept": SCHEMA1})
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    assert "accepts" in r.json()["errors"][0]["detail"]


def test_manifest_by_digest_serves_exact_bytes(client, seed_reg):
    for m in seed_image(seed_reg).manifests:
        r = client.get(f"/v2/registry/manifests/{m.digest}", headers={"Accept": SCHEMA1})  # Accept is moot
        assert r.status_code == 200 and r.content == m.data and r.headers["content-type"] == m.media_type


@pytest.fixture(scope="module")
def multi_reg(multiarch_tar):
    with running_registry([multiarch_tar]) as reg:
        yield reg


def test_index_platform_child(multi_reg):
    index = multi_reg.archives[0].roots[0]
    by_arch = {c.platform.architecture: c.manifests[0] for c in index.children}
    with httpx.Client(base_url=multi_reg.url) as c:
        r = c.get("/v2/registry/manifests/2.8.1", headers={"Accept": f"{mt.OCI_INDEX}, {mt.OCI_MANIFEST}"})
        assert r.headers["docker-content-digest"] == index.manifest.digest
        r = c.get("/v2/registry/manifests/2.8.1", headers={"Accept": mt.OCI_MANIFEST})
        assert r.headers["docker-content-digest"] == by_arch["amd64"].digest
        ua = "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1 os/linux arch/arm64 UpstreamClient(x)"
        r = c.get("/v2/registry/manifests/2.8.1", headers={"Accept": mt.OCI_MANIFEST, "User-Agent": ua})
        assert r.status_code == 200 and r.headers["docker-content-digest"] == by_arch["arm64"].digest
        assert sha(r.content) == by_arch["arm64"].digest
        r = c.get("/v2/registry/manifests/2.8.1", headers={"Accept": mt.DOCKER_MANIFEST})
        assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"


def test_if_none_match(client, seed_reg):
    docker = seed_image(seed_reg).manifests[0]
    layer = big_layer(seed_image(seed_reg))
    for inm in (f'"{docker.digest}"', f'W/"{docker.digest}"', f'"x", "{docker.digest}"', "*"):
        r = client.get("/v2/registry/manifests/2.8.1", headers={"Accept": mt.DOCKER_MANIFEST, "If-None-Match": inm})
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == f'"{docker.digest}"'
    r = client.get("/v2/registry/manifests/2.8.1", headers={"Accept": mt.DOCKER_MANIFEST, "If-None-Match": '"other"'})
    assert r.status_code == 200
    r = client.get(f"/v2/registry/blobs/{layer.digest}", headers={"If-None-Match": f'"{layer.digest}"'})
    assert r.status_code == 304 and r.headers["cache-control"] == "max-age=31536000"


def test_head_carries_length_and_digest(client, seed_reg):
    image = seed_image(seed_reg)
    paths = [
        "/v2/registry/manifests/2.8.1",
        f"/v2/registry/manifests/{image.manifests[1].digest}",
        f"/v2/registry/blobs/{big_layer(image).digest}",
        f"/v2/registry/blobs/{image.config.descriptor.digest}",
        f"/v2/registry/blobs/{image.manifests[0].digest}",
    ]
    for path in paths:
        g, h = client.get(path), client.head(path)
        assert g.status_code == h.status_code == 200, path
        assert h.content == b""
        assert h.headers["content-length"] == g.headers["content-length"] == str(len(g.content))
        assert h.headers["docker-content-digest"] == g.headers["docker-content-digest"] == sha(g.content)
    for path in [
        "/v2/registry/manifests/nope",
        f"/v2/registry/blobs/{MISSING}",
        "/v2/nothere/tags/list",
        "/v2/registry/manifests/sha256:zz",
    ]:
        g, h = client.get(path), client.head(path)
        assert g.status_code == h.status_code >= 400
        assert h.content == b"" and h.headers["content-length"] == g.headers["content-length"] == str(len(g.content))


# -- blobs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header, span",
    [
        ("bytes=0-9", (0, 10)),
        ("bytes=100-", (100, None)),
        ("bytes=-10", (-10, None)),
        ("bytes=5-999999999999", (5, None)),
        ("bytes=0-0", (0, 1)),
    ],
)
def test_range(client, seed_reg, header, span):
    layer = big_layer(seed_image(seed_reg))
    whole = client.get(f"/v2/registry/blobs/{layer.digest}").content
    assert sha(whole) == layer.digest
    r = client.get(f"/v2/registry/blobs/{layer.digest}", headers={"Range": header})
    part = whole[span[0] : span[1]]
    assert r.status_code == 206 and r.content == part
    start = span[0] % len(whole)
    assert r.headers["content-range"] == f"bytes {start}-{start + len(part) - 1}/{len(whole)}"
    assert r.headers["content-length"] == str(len(part))


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-2", "bytes=x-y"])
def test_range_we_do_not_serve_is_ignored(client, seed_reg, header):
    layer = big_layer(seed_image(seed_reg))
    r = client.get(f"/v2/registry/blobs/{layer.digest}", headers={"Range": header})
    assert r.status_code == 200 and sha(r.content) == layer.digest


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0", "bytes={size}-"])
def test_range_unsatisfiable(client, seed_reg, header):
    layer = big_layer(seed_image(seed_reg))
    size = layer.descriptor.size
    r = client.get(f"/v2/registry/blobs/{layer.digest}", headers={"Range": header.format(size=size)})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{size}"
    assert r.headers["content-length"] == str(len(r.content))
    assert error_code(r) == "RANGE_INVALID"


def test_if_range(client, seed_reg):
    layer = big_layer(seed_image(seed_reg))
    url = f"/v2/registry/blobs/{layer.digest}"
    r = client.get(url, headers={"Range": "bytes=0-3", "If-Range": f'"{layer.digest}"'})
    assert r.status_code == 206 and len(r.content) == 4
    for stale in ('"sha256:other"', "Wed, 21 Oct 2015 07:28:00 GMT"):
        r = client.get(url, headers={"Range": "bytes=0-3", "If-Range": stale})
        assert r.status_code == 200 and sha(r.content) == layer.digest


def test_blob_headers(client, seed_reg):
    layer = big_layer(seed_image(seed_reg))
    r = client.get(f"/v2/registry/blobs/{layer.digest}")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["cache-control"] == "max-age=31536000"
    assert r.headers["etag"] == f'"{layer.digest}"'
    assert r.headers["docker-content-digest"] == layer.digest


def test_blobs_are_scoped_to_repositories(seed_tar, multiarch_tar):
    multi = open_archive(str(multiarch_tar))
    for root in multi.roots:
        root.repository = "multi"
    arm = next(c for c in multi.roots[0].children if c.platform.architecture == "arm64")
    with running_registry([seed_tar, multi]) as reg, httpx.Client(base_url=reg.url) as c:
        r = c.get(f"/v2/registry/blobs/{arm.config.descriptor.digest}")
        assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"
        r = c.get(f"/v2/multi/blobs/{arm.config.descriptor.digest}")
        assert r.status_code == 200 and sha(r.content) == arm.config.descriptor.digest


# -- methods, errors, validation -----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize(
    "path",
    [
        "/v2/",
        "/v2/registry/manifests/2.8.1",
        f"/v2/registry/blobs/{MISSING}",
        "/v2/registry/blobs/uploads/",
        "/v2/registry/tags/list",
        "/v2/_catalog",
    ],
)
def test_writes_are_405(client, method, path):
    r = client.request(method, path, content=b"x")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"
    assert error_code(r) == "UNSUPPORTED"


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/v2/Registry/manifests/2.8.1", 400, "NAME_INVALID"),
        ("/v2/a//b/manifests/2.8.1", 400, "NAME_INVALID"),
        ("/v2/-a/manifests/2.8.1", 400, "NAME_INVALID"),
        ("/v2/" + "a" * 256 + "/manifests/x", 400, "NAME_INVALID"),
        ("/v2/a__b___c/tags/list", 400, "NAME_INVALID"),
        ("/v2/registry/manifests/.hidden", 404, "MANIFEST_UNKNOWN"),  # TAG_INVALID is for pushes
        ("/v2/registry/manifests/" + "t" * 129, 404, "MANIFEST_UNKNOWN"),
        ("/v2/registry/manifests/sha256:abc", 400, "DIGEST_INVALID"),
        ("/v2/registry/manifests/sha256:" + "A" * 64, 400, "DIGEST_INVALID"),
        ("/v2/registry/manifests/md5:d41d8cd98f00b204e9800998ecf8427e", 400, "DIGEST_INVALID"),
        ("/v2/registry/blobs/latest", 400, "DIGEST_INVALID"),
        ("/v2/registry/referrers/nope", 400, "DIGEST_INVALID"),
        ("/v2/registry/manifests/nope", 404, "MANIFEST_UNKNOWN"),
        (f"/v2/registry/manifests/{MISSING}", 404, "MANIFEST_UNKNOWN"),
        (f"/v2/registry/blobs/{MISSING}", 404, "BLOB_UNKNOWN"),
        ("/v2/nothere/manifests/2.8.1", 404, "NAME_UNKNOWN"),
        ("/v2/nothere/tags/list", 404, "NAME_UNKNOWN"),
        ("/v2/registry/blobs/uploads/abc", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("/v2/registry/whatever", 404, "NOT_FOUND"),
        ("/v2/registry/tags/list?n=-1", 400, "PAGINATION_NUMBER_INVALID"),
        ("/v2/_catalog?n=abc", 400, "PAGINATION_NUMBER_INVALID"),
    ],
)
def test_errors(client, seed_reg, path, status, code):
    r = client.get(path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert error_code(r) == code
    assert r.json()["errors"][0].get("detail")
    h = client.head(path)
    assert h.status_code == status and h.content == b"" and h.headers["content-length"] == str(len(r.content))
    finished = wait_for(
        lambda: [e for e in seed_reg.of(RequestFinished) if e.status == status and e.error_code == code]
    )
    assert finished, "the request event carries the error code"


# -- listings ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tagged_layout(tmp_path_factory):
    path = tmp_path_factory.mktemp("tagged") / "layout"
    digests = build_layout(
        path,
        [f"app:{t}" for t in ("a", "b", "c", "d", "e")],
        [b"layer-one" * 100, b"two"],
        referrer="application/vnd.example.sig.v1",
    )
    return path, digests


def test_tags_pagination(tagged_layout):
    with running_registry([tagged_layout[0]]) as reg, httpx.Client(base_url=reg.url) as c:
        assert c.get("/v2/app/tags/list").json() == {"name": "app", "tags": ["a", "b", "c", "d", "e"]}
        r = c.get("/v2/app/tags/list?n=2")
        assert r.json()["tags"] == ["a", "b"]
        assert r.headers["link"] == '</v2/app/tags/list?last=b&n=2>; rel="next"'
        r = c.get("/v2/app/tags/list?n=2&last=b")
        assert r.json()["tags"] == ["c", "d"]
        r = c.get("/v2/app/tags/list?n=2&last=d")
        assert r.json()["tags"] == ["e"] and "link" not in r.headers
        r = c.get("/v2/app/tags/list?n=0")
        assert r.json()["tags"] == [] and "link" not in r.headers
        assert c.get("/v2/app/tags/list?last=c").json()["tags"] == ["d", "e"]
        # the same repository under its docker.io alias
        assert c.get("/v2/docker.io/library/app/tags/list").json()["tags"] == ["a", "b", "c", "d", "e"]


def test_catalog_pagination_and_names(seed_tar):
    with (
        running_registry([seed_tar], names=["mirror/registry", "zarf/seed"]) as reg,
        httpx.Client(base_url=reg.url) as c,
    ):
        assert c.get("/v2/_catalog").json() == {"repositories": ["mirror/registry", "registry", "zarf/seed"]}
        r = c.get("/v2/_catalog?n=1")
        assert r.json()["repositories"] == ["mirror/registry"]
        assert r.headers["link"] == '</v2/_catalog?last=mirror/registry&n=1>; rel="next"'
        r = c.get("/v2/_catalog?n=1&last=mirror/registry")
        assert r.json()["repositories"] == ["registry"]
        for name in ("mirror/registry", "docker.io/mirror/registry", "zarf/seed", "library/registry"):
            r = c.get(f"/v2/{name}/manifests/2.8.1")
            assert r.status_code == 200, name
        assert c.get("/v2/other/manifests/2.8.1").status_code == 404


def test_any_name(seed_tar):
    with running_registry([seed_tar], any_name=True) as reg, httpx.Client(base_url=reg.url) as c:
        image = reg.archives[0].roots[0]
        for name in ("anything", "some/deep/name"):
            assert c.get(f"/v2/{name}/manifests/2.8.1").status_code == 200
            r = c.get(f"/v2/{name}/blobs/{image.config.descriptor.digest}")
            assert sha(r.content) == image.config.descriptor.digest
        assert error_code(c.get("/v2/Bad/manifests/2.8.1")) == "NAME_INVALID"


def test_referrers(tagged_layout):
    path, d = tagged_layout
    with running_registry([path]) as reg, httpx.Client(base_url=reg.url) as c:
        r = c.get(f"/v2/app/referrers/{d['manifest']}")
        assert r.status_code == 200 and r.headers["content-type"] == mt.OCI_INDEX
        index = r.json()
        assert index["mediaType"] == mt.OCI_INDEX and index["schemaVersion"] == 2
        assert [m["digest"] for m in index["manifests"]] == [d["referrer"]]
        desc = index["manifests"][0]
        assert desc["artifactType"] == "application/vnd.example.sig.v1"
        assert desc["annotations"] == {"org.example.kind": "signature"}
        assert "oci-filters-applied" not in r.headers
        # the referrer itself is served from the subject's repository
        art = c.get(f"/v2/app/manifests/{d['referrer']}")
        assert art.status_code == 200 and sha(art.content) == d["referrer"] and desc["size"] == len(art.content)
        r = c.get(f"/v2/app/referrers/{d['manifest']}", params={"artifactType": "application/vnd.example.sig.v1"})
        assert r.headers["oci-filters-applied"] == "artifactType" and len(r.json()["manifests"]) == 1
        r = c.get(f"/v2/app/referrers/{d['manifest']}", params={"artifactType": "application/other"})
        assert r.headers["oci-filters-applied"] == "artifactType" and r.json()["manifests"] == []
        r = c.get(f"/v2/app/referrers/{MISSING}")
        assert r.status_code == 200 and r.json()["manifests"] == []


# -- auth ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def htpasswd_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=5)).decode().replace("$2b$", "$2y$", 1)
    path.write_text(f"# users\nalice:{hashed}\n")
    return path


def test_htpasswd(seed_tar, htpasswd_file):
    with running_registry([seed_tar], htpasswd=str(htpasswd_file)) as reg, httpx.Client(base_url=reg.url) as c:
        for method, path in [
            ("GET", "/v2/"),
            ("HEAD", "/v2/"),
            ("GET", "/v2/registry/manifests/2.8.1"),
            ("GET", "/v2/_catalog"),
            ("PUT", "/v2/registry/manifests/x"),
            ("GET", "/v2/nothere/tags/list"),
            ("PROPFIND", "/v2/"),
            ("GET", "/elsewhere"),
        ]:
            for auth in (None, ("alice", "wrong"), ("bob", "s3cret")):
                r = c.request(method, path, auth=auth)
                assert r.status_code == 401, (method, path, auth)
                assert r.headers["www-authenticate"] == 'Basic realm="regtui"'
                if method != "HEAD":
                    assert error_code(r) == "UNAUTHORIZED"
        r = c.get("/v2/", auth=("alice", "s3cret"))
        assert r.status_code == 200
        r = c.get("/v2/registry/manifests/2.8.1", auth=("alice", "s3cret"))
        assert r.status_code == 200
        r = c.put("/v2/registry/manifests/x", auth=("alice", "s3cret"))
        assert r.status_code == 405
        r = c.get("/v2/", headers={"Authorization": "Basic !!!notbase64"})
        assert r.status_code == 401


def test_htpasswd_file_errors(tmp_path):
    bad = tmp_path / "htpasswd"
    bad.write_text("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    with pytest.raises(HtpasswdError, match="bcrypt"):
        load_htpasswd(str(bad))
    with pytest.raises(HtpasswdError, match="cannot read"):
        load_htpasswd(str(tmp_path / "missing"))
    bad.write_text("# nobody\n")
    with pytest.raises(HtpasswdError, match="no users"):
        load_htpasswd(str(bad))


# -- TLS -----------------------------------------------------------------------------------------------
def test_tls_self_signed(seed_tar, tmp_path):
    certfile, keyfile, fingerprint = self_signed("127.0.0.1", str(tmp_path))
    assert oct(os.stat(keyfile).st_mode & 0o777) == "0o600"
    with running_registry([seed_tar], tls=TLS(certfile, keyfile)) as reg:
        assert reg.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=certfile)
        with httpx.Client(base_url=reg.url, verify=ctx) as c:
            r = c.get("/v2/registry/manifests/2.8.1")
            assert r.status_code == 200 and r.http_version == "HTTP/1.1"
        # Offered h2 and http/1.1, the server picks http/1.1; the certificate is the one fingerprinted.
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", reg.port)) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.selected_alpn_protocol() == "http/1.1"
            der = tls.getpeercert(binary_form=True)
        assert hashlib.sha256(der).hexdigest().upper() == fingerprint.replace(":", "")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{reg.url}/v2/", verify=True)  # not trusted by default: it is self-signed


# -- safety --------------------------------------------------------------------------------------------
def test_archive_changed_on_disk_is_refused(seed_tar, tmp_path):
    copy = tmp_path / "seed.tar"
    shutil.copy(seed_tar, copy)
    with running_registry([copy]) as reg, httpx.Client(base_url=reg.url) as c:
        layer = big_layer(reg.archives[0].roots[0])
        assert c.get(f"/v2/registry/blobs/{layer.digest}").status_code == 200
        with open(copy, "ab") as f:
            f.write(b"\0" * 512)
        for method in ("GET", "HEAD"):
            r = c.request(method, f"/v2/registry/blobs/{layer.digest}")
            assert r.status_code == 503, method
        r = c.get(f"/v2/registry/blobs/{layer.digest}")
        assert error_code(r) == "UNAVAILABLE"
        assert "changed size" in r.json()["errors"][0]["detail"]
        logs = [e for e in reg.of(ServerLog) if e.level == "error" and str(copy) in e.message]
        assert logs, "a log event names the changed archive"


@pytest.fixture(scope="module")
def big_layout(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "layout"
    digests = build_layout(path, ["big:1"], [os.urandom(48 * 1024 * 1024)])
    return path, digests


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_disconnect_mid_blob_leaks_nothing(big_layout):
    path, d = big_layout
    with running_registry([path]) as reg:
        url = f"{reg.url}/v2/big/blobs/{d['layers'][0]}"
        httpx.get(f"{reg.url}/v2/")  # warm up
        baseline = _open_fds()
        for _ in range(5):
            with httpx.stream("GET", url) as r:
                assert r.status_code == 200
                next(r.iter_bytes(65536))
        deadline = time.time() + 10
        while time.time() < deadline:
            done = [e for e in reg.of(RequestFinished) if e.detail and "went away" in e.detail]
            if len(done) == 5 and _open_fds() <= baseline:
                break
            time.sleep(0.1)
        assert len(done) == 5, "every cut request is reported"
        assert all(e.bytes_sent < 48 * 1024 * 1024 for e in done)
        assert _open_fds() <= baseline, "file descriptors leaked"
        # and the server still serves the whole blob correctly afterwards
        data = httpx.get(url, timeout=30).content
        assert sha(data) == d["layers"][0]


# -- events --------------------------------------------------------------------------------------------
def test_request_events(big_layout):
    path, d = big_layout
    with running_registry([path]) as reg, httpx.Client(base_url=reg.url, timeout=30) as c:
        c.get("/v2/big/manifests/1", headers=[("Accept", mt.OCI_MANIFEST), ("Accept", mt.OCI_INDEX)])
        for digest in (d["config"], *d["layers"]):
            c.get(f"/v2/big/blobs/{digest}")
        c.get("/v2/big/manifests/nope")
        wait_for(lambda: len(reg.of(RequestFinished)) == 4)
        started = reg.of(RequestStarted)
        first = started[0]
        assert (first.method, first.repository, first.reference, first.kind) == ("GET", "big", "1", "manifest")
        assert first.accept == (mt.OCI_MANIFEST, mt.OCI_INDEX)
        assert first.user_agent.startswith("python-httpx") and first.client.startswith("127.0.0.1:")
        blob_req = next(s for s in started if s.reference == d["layers"][0])
        progress = [e for e in reg.of(RequestProgress) if e.id == blob_req.id]
        assert 1 < len(progress) < 48, "progress is reported, but throttled"
        assert progress[-1].bytes_sent == progress[-1].total == 48 * 1024 * 1024
        fin = next(e for e in reg.of(RequestFinished) if e.id == blob_req.id)
        assert (fin.status, fin.bytes_sent, fin.error_code) == (200, 48 * 1024 * 1024, None)
        last = reg.of(RequestFinished)[-1]
        assert (last.status, last.error_code) == (404, "MANIFEST_UNKNOWN")
        pulls = [p for p in reg.of(PullProgress) if p.manifest_digest == d["manifest"]]
        assert pulls[-1].finished and pulls[-1].blobs_done == pulls[-1].blobs_total == 2
        assert (
            pulls[-1].bytes_done
            == pulls[-1].bytes_total
            == 48 * 1024 * 1024 + os.path.getsize(path / "blobs" / "sha256" / d["config"].split(":")[1])
        )
        assert len({p.key for p in pulls}) == 1 and pulls[0].blobs_done == 0


def test_pull_of_an_index_follows_the_platform_child(multi_reg):
    index = multi_reg.archives[0].roots[0]
    amd = next(c for c in index.children if c.platform.architecture == "amd64")
    with httpx.Client(base_url=multi_reg.url, headers={"User-Agent": "pull-test/1"}) as c:
        c.get("/v2/registry/manifests/2.8.1", headers={"Accept": mt.OCI_INDEX})
        c.get(f"/v2/registry/manifests/{amd.manifests[0].digest}", headers={"Accept": mt.OCI_MANIFEST})
        for digest in (amd.config.descriptor.digest, *(l.digest for l in amd.layers)):
            c.get(f"/v2/registry/blobs/{digest}")
    wait_for(lambda: any(p.finished for p in multi_reg.of(PullProgress) if p.user_agent == "pull-test/1"))
    pulls = [p for p in multi_reg.of(PullProgress) if p.user_agent == "pull-test/1"]
    assert {p.key for p in pulls} == {pulls[0].key}, "one pull, not one per manifest"
    assert pulls[0].manifest_digest == index.manifest.digest
    assert pulls[-1].finished and pulls[-1].blobs_done == pulls[-1].blobs_total == 1 + len(amd.layers)


# -- embedding (the TUI runs the same app and server on its own loop) -------------------------------------
def test_embedded_server_writes_nothing_to_stderr(seed_tar, capfd):
    with running_registry([seed_tar]) as reg:
        layer = big_layer(reg.archives[0].roots[0])
        with httpx.Client(base_url=reg.url) as c:
            c.get("/v2/registry/manifests/2.8.1")
            c.get(f"/v2/registry/blobs/{MISSING}")
            with c.stream("GET", f"/v2/registry/blobs/{layer.digest}") as r:
                next(r.iter_bytes(1024))
    out, err = capfd.readouterr()
    assert err == "" and out == ""
    assert any("Running on" in e.message for e in reg.of(ServerLog)), "Hypercorn's log goes to the bus"
    assert [e.state for e in reg.of(ServerState)] == ["starting", "serving", "stopping", "stopped"]


async def test_busy_port_is_a_failed_state_not_a_crash(seed_tar):
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    app = create_app([open_archive(str(seed_tar))], bus=bus)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BindError, match="already in use"):
            await serve(app, host="127.0.0.1", port=port, bus=bus)
    assert events[-1].state == "failed" and f"port {port}" in events[-1].error
