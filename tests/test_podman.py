"""podman pulls from a real `regtui serve` process, by tag and by digest, single- and multi-platform.

podman (containers/image, like skopeo) verifies every blob against its digest and re-computes each layer's
diff_id while it unpacks; the stored image's ID and RootFS must then equal what the archive's model says, so a
wrong byte served anywhere fails the pull or the comparison. Storage is a throw-away vfs root per test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from regtui.oci import open_archive
from regtui.oci.model import Image, ImageIndex, Platform
from regtui.oci.negotiate import select_platform
from tests.helpers.support import require_tool
from tests.test_registry_command import Serve

REPO, TAG = "registry", "2.8.1"


@pytest.fixture
def podman(tmp_path):
    exe = require_tool("podman")
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{tmp_path}/run"\ngraphroot = "{tmp_path}/root"\n')
    env = {"CONTAINERS_STORAGE_CONF": str(conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [exe, "--events-backend=none", "--cgroup-manager=cgroupfs", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert r.returncode == 0, f"podman {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        return r

    yield run
    subprocess.run(
        [exe, "--events-backend=none", "system", "reset", "--force"], capture_output=True, env=env, timeout=60
    )


def _expected(archive: Path, arch: str) -> tuple[Image, str]:
    """The image podman should store for `arch`, and the digest that names the root by digest."""
    root = open_archive(str(archive)).tags()[(REPO, TAG)]
    image = select_platform(root, Platform("linux", arch)) if isinstance(root, ImageIndex) else root
    assert isinstance(image, Image)
    return image, root.manifests[0].digest


def _stored(podman, ref: str) -> dict:
    return json.loads(podman("image", "inspect", ref).stdout)[0]


@pytest.mark.parametrize("subject", ["seed_tar", "multiarch_tar"])
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_podman_pull(request, podman, subject, by):
    archive = request.getfixturevalue(subject)
    serve = Serve(str(archive), "--port", "0")
    try:
        host = serve.url().removeprefix("http://")
        image, root_digest = _expected(archive, "amd64")
        ref = f"{host}/{REPO}:{TAG}" if by == "tag" else f"{host}/{REPO}@{root_digest}"
        podman("pull", "--tls-verify=false", ref)
        stored = _stored(podman, ref)
        assert "sha256:" + stored["Id"] == image.config.descriptor.digest
        assert stored["RootFS"]["Layers"] == [layer.diff_id for layer in image.layers]
        assert stored["Digest"] == root_digest
        serve.wait_line(r"pull complete: .* registry[:@]")
    finally:
        assert serve.stop() == 0


def test_podman_pull_other_platform(multiarch_tar, podman):
    """`--arch arm64` gets the index's arm64 child, not the default amd64 one."""
    serve = Serve(str(multiarch_tar), "--port", "0")
    try:
        host = serve.url().removeprefix("http://")
        arm, _ = _expected(multiarch_tar, "arm64")
        amd, _ = _expected(multiarch_tar, "amd64")
        assert arm.config.descriptor.digest != amd.config.descriptor.digest
        podman("pull", "--tls-verify=false", "--arch", "arm64", f"{host}/{REPO}:{TAG}")
        assert "sha256:" + _stored(podman, f"{host}/{REPO}:{TAG}")["Id"] == arm.config.descriptor.digest
    finally:
        assert serve.stop() == 0
