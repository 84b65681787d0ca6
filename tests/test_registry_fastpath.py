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

DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


async def _call(app, method: str, path: str, headers) -> tuple:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": list(headers), "client": ("127.0.0.1", 4321), "server": ("127.0.0.1", 5000),
             "extensions": {}}
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
    headers: list[list] = [[], [(b"accept", DOCKER.encode())], [(b"accept", OCI.encode())],
                           [(b"accept", f"{DOCKER}, {OCI}, {INDEX}".encode())],
                           [(b"accept", DOCKER.encode()), (b"accept", OCI.encode())],
                           [(b"user-agent", b"containerd/1.6 os/linux arch/arm64"), (b"accept", INDEX.encode())],
                           [(b"range", b"bytes=5-99")], [(b"range", b"bytes=-10")],
                           [(b"range", b"bytes=999999999-")], [(b"content-length", b"0")]]
    for repo, tag in sorted(archive.tags()):
        root = dict(archive.tags())[(repo, tag)]
        paths += [f"/v2/{repo}/manifests/{tag}", f"/v2/{repo}/manifests/nosuchtag", f"/v2/{repo}/manifests/-bad",
                  f"/v2/{repo}/manifests/sha256:{'0' * 64}", f"/v2/{repo}/manifests/sha256:12",
                  f"/v2/{repo}/blobs/sha256:{'0' * 64}", f"/v2/{repo}/blobs/md5:00", f"/v2/{repo}/tags/list"]
        for m in root.manifests if hasattr(root, "manifests") else [root.manifest]:
            paths.append(f"/v2/{repo}/manifests/{m.digest}")
            headers.append([(b"if-none-match", f'"{m.digest}"'.encode())])
        for digest in sorted(archive.blob_digests(root))[:3]:
            paths.append(f"/v2/{repo}/blobs/{digest}")
            headers += [[(b"if-none-match", f'W/"{digest}"'.encode())],
                        [(b"range", b"bytes=0-9"), (b"if-range", f'"{digest}"'.encode())]]
    return [(m, p, h) for m, p, h in itertools.product(["GET", "HEAD", "PUT"], paths, headers)]


@pytest.mark.parametrize("fixture", ["seed_tar", "multiarch_tar"])
async def test_fast_path_answers_like_quart(fixture, request):
    archive = open_archive(str(request.getfixturevalue(fixture)))
    apps = []
    for fast in (True, False):
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        app = create_app([archive], bus=bus, fast=fast)
        await app.startup()
        apps.append((app, events))
    (fast_app, fast_events), (quart_app, quart_events) = apps
    cases = _requests(archive)
    served = 0
    for method, path, headers in cases:
        fast_events.clear()
        quart_events.clear()
        got = await _call(fast_app, method, path, headers)
        want = await _call(quart_app, method, path, headers)
        assert got == want, (method, path, headers)
        assert _events(fast_events) == _events(quart_events), (method, path, headers)
        served += want[0][0] in (200, 206, 304)
    assert served > len(cases) // 4  # the successes (the fast path's own answers) are well represented
    for app, _ in apps:
        await app.shutdown()
