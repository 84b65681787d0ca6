"""Test helpers: tool lookup that fails in CI, loopback ports, stopping services by PID, and fixture builders
for what no tool here makes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_tool(name: str) -> str:
    """Path of a tool; a missing tool fails the test in CI and skips it elsewhere."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path:
        return path
    msg = f"{name} is not installed (the README's test command installs it)"
    if in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a service we started, by its PID: SIGTERM, then SIGKILL if it does not go in time."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _write_blob(layout: Path, data: bytes) -> str:
    hexd = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / hexd).write_bytes(data)
    return f"sha256:{hexd}"


def build_multiarch_layout(layout: Path, tag: str) -> None:
    """Turn a one-image OCI layout into a linux/amd64 + linux/arm64 index (the arm64 config is a variant:
    same layers, architecture changed), with the tag on the index."""
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    amd_bytes = (layout / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_bytes()
    amd = json.loads(amd_bytes)
    cfg = json.loads((layout / "blobs" / "sha256" / amd["config"]["digest"].split(":")[1]).read_bytes())
    cfg["architecture"] = "arm64"
    cfg["variant"] = "v8"
    cfg_bytes = json.dumps(cfg, separators=(",", ":")).encode()
    arm = dict(amd)
    arm["config"] = {**amd["config"], "digest": _write_blob(layout, cfg_bytes), "size": len(cfg_bytes)}
    arm_bytes = json.dumps(arm, separators=(",", ":")).encode()
    arm_digest = _write_blob(layout, arm_bytes)
    idx = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": amd["mediaType"],
                "digest": desc["digest"],
                "size": len(amd_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": amd["mediaType"],
                "digest": arm_digest,
                "size": len(arm_bytes),
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
        ],
    }
    idx_bytes = json.dumps(idx, separators=(",", ":")).encode()
    idx_digest = _write_blob(layout, idx_bytes)
    index["manifests"] = [
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": idx_digest,
            "size": len(idx_bytes),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }
    ]
    (layout / "index.json").write_text(json.dumps(index))


def tar_folder(folder: Path, out: Path) -> None:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for p in sorted(folder.rglob("*")):
            tf.add(p, arcname=p.relative_to(folder).as_posix(), recursive=False)
