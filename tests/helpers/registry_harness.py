"""Run the real registry (Quart on Hypercorn) in a background thread on 127.0.0.1:0, for tests."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from pathlib import Path

from regtui.oci import open_archive
from regtui.registry.app import create_app
from regtui.registry.events import EventBus, PullProgress, ServerState
from regtui.registry.server import bind_socket, serve
from tests.helpers.support import stop_process  # noqa: F401 (tests import it from here too)


class RunningRegistry:
    def __init__(self, archives, tls=None, **app_kwargs):
        self.archives = [open_archive(str(a)) if isinstance(a, (str, Path)) else a for a in archives]
        self.events: list = []
        self.bus = EventBus()
        self.bus.subscribe(self.events.append)
        self.app = create_app(self.archives, bus=self.bus, **app_kwargs)
        self.sock = bind_socket("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main():
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.bus.subscribe(
                lambda e: self._ready.set() if isinstance(e, ServerState) and e.state in ("serving", "failed") else None
            )
            await serve(
                self.app,
                host="127.0.0.1",
                sock=self.sock,
                shutdown_trigger=self._stop.wait,
                tls=self.tls,
                bus=self.bus,
                grace=2,
            )

        try:
            asyncio.run(main())
        except BaseException as e:  # surfaced by the test through .error
            self.error = e
            self._ready.set()

    def start(self) -> RunningRegistry:
        self._thread.start()
        assert self._ready.wait(10), "registry did not start"
        assert self.error is None, self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.sock.close()

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    def of_pulls(self):
        return self.of(PullProgress)


@contextmanager
def running_registry(archives, **kwargs):
    reg = RunningRegistry(archives, **kwargs).start()
    try:
        yield reg
    finally:
        reg.stop()


def _put_blob(layout: Path, data: bytes) -> dict:
    import hashlib

    hexd = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / hexd).write_bytes(data)
    return {"digest": f"sha256:{hexd}", "size": len(data)}


def build_layout(layout: Path, tags: list[str], layers: list[bytes], *, referrer: str | None = None) -> dict:
    """A small OCI layout: one image (uncompressed layers) tagged with every `tags` entry (`name:tag`), and
    optionally a signature-like artifact whose subject is the image manifest. Returns the digests."""
    import hashlib
    import json

    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json", **_put_blob(layout, config)}
    ldescs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **_put_blob(layout, b)} for b in layers]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cdesc,
            "layers": ldescs,
        },
        separators=(",", ":"),
    ).encode()
    mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **_put_blob(layout, manifest)}
    entries = [{**mdesc, "annotations": {"org.opencontainers.image.ref.name": t}} for t in tags]
    out = {"manifest": mdesc["digest"], "config": cdesc["digest"], "layers": [d["digest"] for d in ldescs]}
    if referrer:
        empty = {"mediaType": "application/vnd.oci.empty.v1+json", **_put_blob(layout, b"{}")}
        art = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": referrer,
                "config": empty,
                "layers": [{"mediaType": "application/vnd.example.sig", **_put_blob(layout, b"sig")}],
                "subject": mdesc,
                "annotations": {"org.example.kind": "signature"},
            },
            separators=(",", ":"),
        ).encode()
        adesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **_put_blob(layout, art)}
        entries.append(adesc)
        out["referrer"] = adesc["digest"]
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return out


def wait_for(predicate, timeout: float = 10.0):
    """Poll until `predicate()` is truthy: events of a request are published just after its last byte."""
    import time

    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(0.02)
