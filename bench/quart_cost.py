"""Per-request cost of Quart against the raw-ASGI fast path, in process (no sockets): see registry/handlers.py.

.venv/bin/python bench/quart_cost.py [ARCHIVE]
"""

from __future__ import annotations

import asyncio
import sys
import time

from regtui.oci import open_archive
from regtui.registry.app import create_app


async def _call(app, path: str, headers: list) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 4321),
        "server": ("127.0.0.1", 5000),
        "extensions": {},
    }
    pending = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if pending:
            return pending.pop()
        await asyncio.Event().wait()

    async def send(message) -> None:
        pass

    await app(scope, receive, send)


async def main(path: str) -> None:
    archive = open_archive(path)
    image = archive.images()[0]
    repo, tag = sorted(archive.tags())[0]
    cases = [
        ("GET /v2/", "/v2/", []),
        ("manifest by tag", f"/v2/{repo}/manifests/{tag}", [(b"accept", image.manifest.media_type.encode())]),
        ("tags/list", f"/v2/{repo}/tags/list", []),
    ]
    for fast in (True, False):
        app = create_app([archive], fast=fast)
        await app.startup()
        for label, target, headers in cases:
            for _ in range(200):
                await _call(app, target, headers)
            n = 3000
            t = time.perf_counter()
            for _ in range(n):
                await _call(app, target, headers)
            print(f"{'fast path' if fast else 'quart':10} {label:16} {(time.perf_counter() - t) / n * 1e6:7.0f} µs")
        await app.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fixtures/seed-image.tar"))
