"""The raw-ASGI fast path (regtui/registry/fast.py) answers exactly as the Quart app does.

Both apps are called in process with the same ASGI requests; status, headers (names, values and order), body
bytes and the request events must be identical, for successes and for every error the fast path hands back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import pytest

from regtui.oci import open_archive
from regtui.registry.app import create_app
from regtui.registry.events import EventBus, RequestFinished, RequestStarted
from tests.helpers.distribution import write_htpasswd

DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


async def _call(app, method: str, path: str, headers, client: str = "127.0.0.1") -> tuple:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": (client, 4321),
        "server": ("127.0.0.1", 5000),
        "extensions": {},
    }
    pending = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if pending:
            return pending.pop()
        await asyncio.Event().wait()

    start, body = None, bytearray()

    async def send(message):
        nonlocal start
        if message["type"] == "http.response.start":
            start = (message["status"], list(message["headers"]))
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return start, bytes(body)


def _events(events: list) -> list:
    out = []
    for e in events:
        if isinstance(e, (RequestStarted, RequestFinished)):
            d = dataclasses.asdict(e)
            for k in ("id", "time", "duration"):
                d.pop(k, None)
            out.append((type(e).__name__, d))
    return out


def _requests(archive) -> list[tuple[str, str, list]]:
    paths = ["/v2/", "/v2", "/v2/_catalog", "/v2/nope/manifests/1", "/v2/BAD/manifests/1"]
    headers: list[list] = [
        [],
        [(b"accept", DOCKER.encode())],
        [(b"accept", OCI.encode())],
        [(b"accept", f"{DOCKER}, {OCI}, {INDEX}".encode())],
        [(b"accept", DOCKER.encode()), (b"accept", OCI.encode())],
        [(b"user-agent", b"containerd/1.6 os/linux arch/arm64"), (b"accept", INDEX.encode())],
        [(b"range", b"bytes=5-99")],
        [(b"range", b"bytes=-10")],
        [(b"range", b"bytes=999999999-")],
        [(b"content-length", b"0")],
    ]
    for repo, tag in sorted(archive.tags()):
        root = dict(archive.tags())[(repo, tag)]
        paths += [
            f"/v2/{repo}/manifests/{tag}",
            f"/v2/{repo}/manifests/nosuchtag",
            f"/v2/{repo}/manifests/-bad",
            f"/v2/{repo}/manifests/sha256:{'0' * 64}",
            f"/v2/{repo}/manifests/sha256:12",
            f"/v2/{repo}/blobs/sha256:{'0' * 64}",
            f"/v2/{repo}/blobs/md5:00",
            f"/v2/{repo}/tags/list",
        ]
        for m in root.manifests if hasattr(root, "manifests") else [root.manifest]:
            paths.append(f"/v2/{repo}/manifests/{m.digest}")
            headers.append([(b"if-none-match", f'"{m.digest}"'.encode())])
        for digest in sorted(archive.blob_digests(root))[:3]:
            paths.append(f"/v2/{repo}/blobs/{digest}")
            headers += [
                [(b"if-none-match", f'W/"{digest}"'.encode())],
                [(b"range", b"bytes=0-9"), (b"if-range", f'"{digest}"'.encode())],
            ]
    return [(m, p, h) for m, p, h in itertools.product(["GET", "HEAD", "PUT"], paths, headers)]


@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "htpasswd"])
@pytest.mark.parametrize("fixture", ["seed_tar", "multiarch_tar"])
async def test_fast_path_answers_like_quart(fixture, request, auth, tmp_path):
    archive = open_archive(str(request.getfixturevalue(fixture)))
    htpasswd = str(write_htpasswd(tmp_path / "htpasswd", {"u": "p"})) if auth else None
    apps = []
    for fast in (True, False):
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        app = create_app([archive], bus=bus, fast=fast, htpasswd=htpasswd)
        await app.startup()
        apps.append((app, events))
    (fast_app, fast_events), (quart_app, quart_events) = apps
    cases = _requests(archive)
    if auth:  # most with valid credentials, the others with none or wrong ones
        creds = [[(b"authorization", b"Basic dTpw")]] * 3 + [[], [(b"authorization", b"Basic dTp4")]]
        cases = [(m, p, [*creds[i % len(creds)], *h]) for i, (m, p, h) in enumerate(cases)]
    served = 0
    for i, (method, path, headers) in enumerate(cases):
        fast_events.clear()
        quart_events.clear()
        client = f"127.1.{i // 250}.{i % 250}"  # an address each: repeated password failures are slowed down
        got = await _call(fast_app, method, path, headers, client)
        want = await _call(quart_app, method, path, headers, client)
        assert got == want, (method, path, headers)
        assert _events(fast_events) == _events(quart_events), (method, path, headers)
        served += want[0][0] in (200, 206, 304)
    assert served > len(cases) // (7 if auth else 4)  # the successes (the fast path's own answers) are well represented
    for app, _ in apps:
        await app.shutdown()


def test_the_pump_engages_on_a_real_socket_with_the_right_bytes(seed_tar, monkeypatch):
    """Over a real Hypercorn socket, blob GETs go through the thread pump (the in-process calls above never
    reach it), whole and in ranges, and carry exactly the blob's bytes and the Quart path's headers."""
    import hashlib

    import httpx

    from regtui.registry import pump
    from tests.helpers.registry_harness import running_registry

    pumped = []
    real_run = pump._Pump.run
    monkeypatch.setattr(pump._Pump, "run", lambda self, budget: pumped.append(budget) or real_run(self, budget))
    archive = open_archive(str(seed_tar))
    image = archive.images()[0]
    with running_registry([archive]) as fast, running_registry([archive], fast=False) as slow:
        for digest in [image.config.descriptor.digest, *(layer.digest for layer in image.layers)]:
            whole = b""
            for headers in ({}, {"Range": "bytes=10-1000"}, {"Range": "bytes=-77"}, {"Range": "bytes=3-"}):
                before = len(pumped)
                got = httpx.get(f"{fast.url}/v2/registry/blobs/{digest}", headers=headers, timeout=30)
                want = httpx.get(f"{slow.url}/v2/registry/blobs/{digest}", headers=headers, timeout=30)
                assert len(pumped) > before, "the pump did not run"
                assert got.status_code == want.status_code and got.content == want.content
                drop = {"date"}
                assert [(k, v) for k, v in got.headers.items() if k not in drop] == [
                    (k, v) for k, v in want.headers.items() if k not in drop
                ]
                if not headers:
                    whole = got.content
                    assert "sha256:" + hashlib.sha256(whole).hexdigest() == digest
                else:
                    start = int(got.headers["content-range"].split()[1].split("-")[0])
                    assert got.content == whole[start : start + len(got.content)]
