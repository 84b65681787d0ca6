"""regtui against the reference registry, case by case.

The Debian `docker-registry` (distribution 2.8.2) runs with filesystem storage in a temp folder; the same
images are pushed into it with skopeo *from regtui* (`--preserve-digests`), so both serve identical bytes and
digests. It then restarts read-only, and every case below is sent to both. Status, error code and the headers
clients rely on must match, except where regtui deliberately differs:

| case                         | distribution 2.8.2                        | regtui                                    | why |
|------------------------------|-------------------------------------------|-------------------------------------------|-----|
| manifest of unknown repo     | 404 MANIFEST_UNKNOWN                      | 404 NAME_UNKNOWN                          | the spec's code for an unknown repository |
| blob of unknown repo         | 404 BLOB_UNKNOWN                          | 404 NAME_UNKNOWN                          | same |
| manifest, malformed digest   | 500 with a storage path in the body       | 400 DIGEST_INVALID                        | a client error, and no internals leaked |
| manifest, invalid tag        | 404 plain-text "page not found"           | 404 MANIFEST_UNKNOWN (JSON)               | spec error bodies everywhere (TAG_INVALID is a push code) |
| manifest, invalid name       | 404 plain-text "page not found"           | 400 NAME_INVALID (JSON)                   | spec error bodies everywhere |
| unknown endpoint under /v2/  | 404 plain text                            | 404 JSON error body                       | same |
| blob, unsatisfiable Range    | 416 text/plain, Content-Length = blob size, then a cut connection | 416 JSON RANGE_INVALID with its real Content-Length (both `Content-Range: bytes */size`) | RFC 9110 |
| index by tag, only OCI manifest accepted | 404 MANIFEST_UNKNOWN          | 200, the linux/amd64 child                | like Docker Hub: the client's platform |
| OCI manifest/index by digest, type not in Accept | 404 MANIFEST_UNKNOWN  | 200, exactly those bytes                  | a digest names bytes, whatever their type |
| referrers API                | 404 (not implemented in 2.8)              | 200 empty OCI index                       | distribution-spec v1.1 |
| writes (PUT/POST/DELETE/PATCH) | 405 plain text "Method not allowed"     | 405 JSON UNSUPPORTED (both `Allow: GET, HEAD`) | spec error body |
| PATCH to an unknown upload   | 404 upload unknown                        | 405 UNSUPPORTED                           | no upload can exist in a read-only registry |
| manifest 304 Not Modified    | no ETag, no Docker-Content-Digest         | both headers                              | RFC 9110: a 304 carries the ETag |
| unsatisfiable Range headers  | no Accept-Ranges                          | Accept-Ranges: bytes                      | tells the client ranges work |
| tags/list?n=0                | the full list                             | an empty list                             | distribution-spec: n=0 means none |
| `library/registry`, `docker.io/library/registry` | 404 (only the pushed name) | 200, same image                    | regtui's name mapping (README) |
"""  # noqa: E501 (a table: its rows cannot wrap)

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from regtui.oci import mediatypes as mt
from regtui.oci import open_archive
from tests.helpers.distribution import DistributionRegistry
from tests.helpers.registry_harness import running_registry
from tests.helpers.support import require_tool

SKOPEO_ACCEPT = [
    mt.OCI_MANIFEST,
    mt.OCI_INDEX,
    mt.DOCKER_MANIFEST,
    mt.DOCKER_LIST,
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
]
CONTAINERD_ACCEPT = ", ".join([mt.DOCKER_MANIFEST, mt.DOCKER_LIST, mt.OCI_MANIFEST, mt.OCI_INDEX, "*/*"])
COMPARED = [
    "content-type",
    "content-length",
    "docker-content-digest",
    "etag",
    "accept-ranges",
    "cache-control",
    "content-range",
    "location",
    "link",
    "docker-distribution-api-version",
]


@pytest.fixture(scope="module")
def pair(seed_tar, multiarch_tar, tmp_path_factory):
    """(regtui, distribution) base URLs serving `registry:2.8.1` (Docker v2) and `multi:2.8.1` (OCI index)."""
    skopeo = require_tool("skopeo")
    multi = open_archive(str(multiarch_tar))
    for root in multi.roots:
        root.repository = "multi"  # a second repository, so blob scoping and pagination have something to show
    base = tmp_path_factory.mktemp("distribution")
    with running_registry([seed_tar, multi]) as reg:
        with DistributionRegistry(base / "rw", storage=base / "data") as dist:
            for src, extra in (("registry:2.8.1", []), ("multi:2.8.1", ["--all"])):
                subprocess.run(
                    [
                        skopeo,
                        "copy",
                        "-q",
                        "--preserve-digests",
                        *extra,
                        "--src-tls-verify=false",
                        "--dest-tls-verify=false",
                        f"docker://{reg.host}/{src}",
                        f"docker://{dist.host}/{src}",
                    ],
                    check=True,
                    timeout=120,
                )
        with DistributionRegistry(base / "ro", storage=base / "data", readonly=True) as dist:
            yield reg, dist.url


def fetch(base: str, method: str, path: str, headers: list[tuple[str, str]]) -> dict:
    with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as c:
        req = c.build_request(method, path, headers=httpx.Headers(headers))
        r = c.send(req, stream=True)
        try:
            body = r.read()
            cut = False
        except httpx.HTTPError:
            body, cut = b"", True
        finally:
            r.close()
    out = {"status": r.status_code, "cut": cut, "body": body}
    for h in COMPARED + ["allow"]:
        out[h] = r.headers.get(h)
    out["code"] = None
    if body and (r.headers.get("content-type") or "").startswith("application/json") and r.status_code >= 400:
        try:
            out["code"] = json.loads(body)["errors"][0]["code"]
        except (ValueError, KeyError, IndexError):
            pass
    return out


@pytest.fixture(scope="module")
def digests(pair):
    reg, _ = pair
    seed, multi = reg.archives
    image = seed.roots[0]
    index = multi.roots[0]
    amd = next(c for c in index.children if c.platform.architecture == "amd64")
    arm = next(c for c in index.children if c.platform.architecture == "arm64")
    big = max(image.layers, key=lambda l: l.descriptor.size)
    return {
        "manifest": image.manifests[0].digest,
        "oci_form": image.manifests[1].digest,
        "layer": big.digest,
        "size": big.descriptor.size,
        "config": image.config.descriptor.digest,
        "index": index.manifest.digest,
        "amd64": amd.manifests[0].digest,
        "arm_config": arm.config.descriptor.digest,
        "missing": "sha256:" + "0" * 64,
    }


D2 = [("Accept", mt.DOCKER_MANIFEST)]
WRITE = {"content-type": "application/json; charset=utf-8", "code": "UNSUPPORTED"}
# (id, method, path, request headers, {field: regtui's deliberate value} for documented differences)
CASES = [
    ("base", "GET", "/v2/", [], {}),
    ("base-head", "HEAD", "/v2/", [], {}),
    ("base-redirect", "GET", "/v2", [], {}),
    ("manifest-tag-docker", "GET", "/v2/registry/manifests/2.8.1", D2, {}),
    ("manifest-tag-head", "HEAD", "/v2/registry/manifests/2.8.1", D2, {}),
    ("manifest-tag-skopeo", "GET", "/v2/registry/manifests/2.8.1", [("Accept", a) for a in SKOPEO_ACCEPT], {}),
    ("manifest-tag-containerd-head", "HEAD", "/v2/registry/manifests/2.8.1", [("Accept", CONTAINERD_ACCEPT)], {}),
    (
        "manifest-alias-library",
        "GET",
        "/v2/library/registry/manifests/2.8.1",
        D2,
        {
            "status": 200,
            "content-type": mt.DOCKER_MANIFEST,
            "code": None,
            "docker-content-digest": "{manifest}",
            "etag": '"{manifest}"',
        },
    ),
    (
        "manifest-alias-docker-io",
        "HEAD",
        "/v2/docker.io/library/registry/manifests/2.8.1",
        D2,
        {
            "status": 200,
            "content-type": mt.DOCKER_MANIFEST,
            "docker-content-digest": "{manifest}",
            "etag": '"{manifest}"',
        },
    ),
    ("manifest-digest", "GET", "/v2/registry/manifests/{manifest}", D2, {}),
    ("manifest-digest-head", "HEAD", "/v2/registry/manifests/{manifest}", D2, {}),
    (
        "manifest-304",
        "GET",
        "/v2/registry/manifests/2.8.1",
        [*D2, ("If-None-Match", '"{manifest}"')],
        {"etag": '"{manifest}"', "docker-content-digest": "{manifest}"},
    ),
    ("manifest-unknown-tag", "GET", "/v2/registry/manifests/nope", D2, {}),
    ("manifest-unknown-tag-head", "HEAD", "/v2/registry/manifests/nope", D2, {}),
    ("manifest-unknown-digest", "GET", "/v2/registry/manifests/{missing}", D2, {}),
    ("manifest-unknown-repo", "GET", "/v2/nothere/manifests/2.8.1", D2, {"code": "NAME_UNKNOWN"}),
    ("manifest-bad-digest", "GET", "/v2/registry/manifests/sha256:abc", D2, {"status": 400, "code": "DIGEST_INVALID"}),
    (
        "manifest-bad-tag",
        "GET",
        "/v2/registry/manifests/-bad",
        D2,
        {"code": "MANIFEST_UNKNOWN", "content-type": "application/json; charset=utf-8"},
    ),
    (
        "manifest-bad-name",
        "GET",
        "/v2/Registry/manifests/2.8.1",
        D2,
        {"status": 400, "code": "NAME_INVALID", "content-type": "application/json; charset=utf-8"},
    ),
    ("index-tag-oci", "GET", "/v2/multi/manifests/2.8.1", [("Accept", mt.OCI_INDEX)], {}),
    ("index-tag-containerd", "HEAD", "/v2/multi/manifests/2.8.1", [("Accept", CONTAINERD_ACCEPT)], {}),
    (
        "index-tag-only-manifest",
        "GET",
        "/v2/multi/manifests/2.8.1",
        [("Accept", mt.OCI_MANIFEST)],
        {
            "status": 200,
            "code": None,
            "content-type": mt.OCI_MANIFEST,
            "docker-content-digest": "{amd64}",
            "etag": '"{amd64}"',
            "content-length": "*",
        },
    ),
    ("index-tag-docker-only", "GET", "/v2/multi/manifests/2.8.1", D2, {}),
    ("index-digest-oci", "GET", "/v2/multi/manifests/{index}", [("Accept", mt.OCI_INDEX)], {}),
    (
        "index-digest-no-accept",
        "GET",
        "/v2/multi/manifests/{index}",
        [],
        {
            "status": 200,
            "code": None,
            "content-type": mt.OCI_INDEX,
            "docker-content-digest": "{index}",
            "etag": '"{index}"',
            "content-length": "*",
        },
    ),
    ("child-digest-oci", "GET", "/v2/multi/manifests/{amd64}", [("Accept", mt.OCI_MANIFEST)], {}),
    ("blob", "GET", "/v2/registry/blobs/{layer}", [], {}),
    ("blob-head", "HEAD", "/v2/registry/blobs/{layer}", [], {}),
    ("blob-config", "GET", "/v2/registry/blobs/{config}", [], {}),
    ("blob-range", "GET", "/v2/registry/blobs/{layer}", [("Range", "bytes=0-9")], {}),
    ("blob-range-open", "GET", "/v2/registry/blobs/{layer}", [("Range", "bytes=100-")], {}),
    ("blob-range-suffix", "GET", "/v2/registry/blobs/{layer}", [("Range", "bytes=-10")], {}),
    ("blob-range-clamped", "GET", "/v2/registry/blobs/{layer}", [("Range", "bytes=5-999999999999")], {}),
    (
        "blob-range-unsatisfiable",
        "GET",
        "/v2/registry/blobs/{layer}",
        [("Range", "bytes=999999999-")],
        {
            "content-type": "application/json; charset=utf-8",
            "code": "RANGE_INVALID",
            "cut": False,
            "accept-ranges": "bytes",
        },
    ),
    ("blob-304", "GET", "/v2/registry/blobs/{layer}", [("If-None-Match", '"{layer}"')], {}),
    ("blob-unknown", "GET", "/v2/registry/blobs/{missing}", [], {}),
    ("blob-unknown-head", "HEAD", "/v2/registry/blobs/{missing}", [], {}),
    ("blob-other-repo", "GET", "/v2/registry/blobs/{arm_config}", [], {}),
    ("blob-unknown-repo", "GET", "/v2/nothere/blobs/{layer}", [], {"code": "NAME_UNKNOWN"}),
    ("blob-bad-digest", "GET", "/v2/registry/blobs/sha256:abc", [], {}),
    ("tags", "GET", "/v2/registry/tags/list", [], {}),
    ("tags-n0", "GET", "/v2/registry/tags/list?n=0", [], {"content-length": "30"}),
    ("tags-unknown-repo", "GET", "/v2/nothere/tags/list", [], {}),
    ("catalog", "GET", "/v2/_catalog", [], {}),
    ("catalog-page", "GET", "/v2/_catalog?n=1", [], {}),
    ("catalog-page-2", "GET", "/v2/_catalog?n=1&last=multi", [], {}),
    (
        "referrers",
        "GET",
        "/v2/registry/referrers/{manifest}",
        [],
        {"status": 200, "content-type": mt.OCI_INDEX, "content-length": "*"},
    ),
    (
        "unknown-endpoint",
        "GET",
        "/v2/registry/nothing",
        [],
        {"content-type": "application/json; charset=utf-8", "content-length": "*", "code": "NOT_FOUND"},
    ),
    ("put-manifest", "PUT", "/v2/registry/manifests/2.8.1", [("Content-Type", mt.DOCKER_MANIFEST)], WRITE),
    ("delete-manifest", "DELETE", "/v2/registry/manifests/{manifest}", [], WRITE),
    ("post-upload", "POST", "/v2/registry/blobs/uploads/", [], WRITE),
    ("patch-upload", "PATCH", "/v2/registry/blobs/uploads/abc", [], {"status": 405, "code": "UNSUPPORTED"}),
    ("delete-blob", "DELETE", "/v2/registry/blobs/{layer}", [], WRITE),
]


def _fill(value, d):
    return value.format(**d) if isinstance(value, str) else value


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_as_distribution(pair, digests, case):
    reg, dist = pair
    _id, method, path, headers, differs = case
    path = _fill(path, digests)
    headers = [(k, _fill(v, digests)) for k, v in headers]
    ours = fetch(reg.url, method, path, headers)
    theirs = fetch(dist, method, path, headers)
    fields = ["status", "code", "cut", *COMPARED]
    if theirs["status"] >= 400 or ours["status"] >= 400:
        fields.remove("content-length")  # error messages differ in wording
    mismatches = {}
    for f in fields:
        if f in differs:
            expected = _fill(differs[f], digests)
            if expected == "*":
                assert ours[f] is not None, f"{f} missing"
            elif ours[f] != expected:
                mismatches[f] = (ours[f], f"documented as {expected!r}")
            if theirs[f] == ours[f]:
                mismatches[f] = (ours[f], f"documented as a difference, but distribution says {theirs[f]!r} too")
        elif ours[f] != theirs[f]:
            mismatches[f] = (ours[f], theirs[f])
    assert not mismatches, f"regtui vs distribution: {mismatches}"
    if ours["status"] == 405:
        assert ours["allow"] == "GET, HEAD"
    if method == "GET" and ours["status"] in (200, 206) and theirs["status"] == ours["status"]:
        assert ours["body"] == theirs["body"] or _id.startswith(("catalog", "tags")), "bodies differ"
