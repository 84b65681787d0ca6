"""Real parts for the push tests beyond the registry itself (tests/distribution.py): skopeo pulls that re-hash
every blob, a TCP proxy that cuts connections after N bytes, and an archive with a big layer."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
from pathlib import Path

from tests.helpers.distribution import DistributionRegistry as Registry
from tests.helpers.distribution import TestCA, TokenServer, make_ca, write_htpasswd
from tests.helpers.support import require_tool

# The registry pieces are re-exported: bench/push_bench.py imports Registry from here.
__all__ = [
    "CuttingProxy",
    "Registry",
    "TestCA",
    "TokenServer",
    "add_big_layer",
    "make_ca",
    "pull_and_rehash",
    "skopeo",
    "write_htpasswd",
]

# -- skopeo ---------------------------------------------------------------------------------------------


def skopeo(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    exe = require_tool("skopeo")
    return subprocess.run([exe, *args], capture_output=True, timeout=timeout, check=True)


def pull_and_rehash(ref: str, dest: Path, *, tls_args: list[str], all_images: bool = False) -> bytes:
    """skopeo copy docker://ref to a dir: folder (manifests kept byte for byte), re-hash every blob there;
    returns the top manifest's bytes."""
    args = ["copy", "-q", *tls_args, *(["--all"] if all_images else []), f"docker://{ref}", f"dir:{dest}"]
    skopeo(*args)
    blobs = [p for p in dest.iterdir() if len(p.name) == 64]
    assert blobs, f"skopeo copied no blobs from {ref}"
    for p in blobs:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        assert h.hexdigest() == p.name, f"blob {p.name} pulled from {ref} hashes to {h.hexdigest()}"
    return (dest / "manifest.json").read_bytes()


# -- a TCP proxy that cuts ------------------------------------------------------------------------------


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the registry and counts client->server bytes; when `cut_after` is set,
    drops every connection once that many bytes went upstream (once; later connections pass)."""

    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.sent = 0
        self.cut_after: int | None = None
        self.cuts = 0
        self.conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self, cut_after: int | None = None) -> None:
        with self.lock:
            self.sent = 0
            self.cut_after = cut_after

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    with self.lock:
                        self.sent += len(data)
                        cut = self.cut_after is not None and self.sent >= self.cut_after
                    if cut:
                        self._cut()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _cut(self) -> None:
        with self.lock:
            self.cut_after = None
            self.cuts += 1
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                # linger 0: a reset, like a dropped network; shutdown first wakes the pump blocked in recv,
                # which would otherwise keep the socket open past close().
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self._cut()


# -- archives -------------------------------------------------------------------------------------------


def add_big_layer(layout: Path, size: int) -> str:
    """Append an uncompressed layer holding `size` random bytes to the one image of an OCI layout (config
    diff_ids, history, manifest and index.json updated); returns the layer digest."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    manifest = json.loads((blobs / desc["digest"].split(":")[1]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        info.mtime = 0
        tf.addfile(info, io.BytesIO(os.urandom(size)))
    layer = buf.getvalue()

    def put(data: bytes) -> tuple[str, int]:
        hexd = hashlib.sha256(data).hexdigest()
        (blobs / hexd).write_bytes(data)
        return f"sha256:{hexd}", len(data)

    layer_digest, layer_size = put(layer)
    config["rootfs"]["diff_ids"].append(layer_digest)
    config.setdefault("history", []).append({"created": "2024-01-01T00:00:00Z", "created_by": "big layer"})
    cfg_digest, cfg_size = put(json.dumps(config, separators=(",", ":")).encode())
    manifest["config"].update(digest=cfg_digest, size=cfg_size)
    manifest["layers"].append(
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}
    )
    m_digest, m_size = put(json.dumps(manifest, separators=(",", ":")).encode())
    desc.update(digest=m_digest, size=m_size)
    (layout / "index.json").write_text(json.dumps(index))
    return layer_digest
