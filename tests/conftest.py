"""Shared fixtures: the shared seed image and variants made from it with real tools (skopeo).

Every fixture made here is built once per session in a temp folder; the shared seed image is read in place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import build_multiarch_layout, require_tool, tar_folder

pytest_plugins = ["tests.zarf_fixtures"]  # Zarf packages in every form, built from the images below

# The shared seed image: $REGTUI_SEED, else shared/fixtures/ beside the checkout (where CI copies it too).
SEED = Path(os.environ.get("REGTUI_SEED") or
            Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "seed-image.tar")


@pytest.fixture(scope="session")
def seed_tar() -> Path:
    assert SEED.exists(), f"shared seed image not found at {SEED} (set REGTUI_SEED to its path)"
    return SEED


@pytest.fixture(scope="session")
def variants_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("variants")


def _skopeo(*args: str) -> None:
    skopeo = require_tool("skopeo")
    subprocess.run([skopeo, "copy", "-q", *args], check=True, timeout=120)


def _converted(seed: Path, out: Path, transport: str) -> Path:
    """The seed image converted by skopeo into another transport's format (once per session)."""
    if not out.exists():
        _skopeo(f"docker-archive:{seed}", f"{transport}:{out}:registry:2.8.1")
    return out


@pytest.fixture(scope="session")
def docker_tar(seed_tar, variants_dir) -> Path:
    """`docker save` legacy format as skopeo's docker-archive transport writes it."""
    return _converted(seed_tar, variants_dir / "docker-archive.tar", "docker-archive")


@pytest.fixture(scope="session")
def oci_tar(seed_tar, variants_dir) -> Path:
    return _converted(seed_tar, variants_dir / "oci-archive.tar", "oci-archive")


@pytest.fixture(scope="session")
def oci_dir(seed_tar, variants_dir) -> Path:
    return _converted(seed_tar, variants_dir / "oci-layout", "oci")


@pytest.fixture(scope="session")
def multiarch_dir(oci_dir, variants_dir) -> Path:
    """An OCI layout whose tag points at an index of linux/amd64 and linux/arm64 images."""
    out = variants_dir / "multiarch-layout"
    if not out.exists():
        shutil.copytree(oci_dir, out)
        build_multiarch_layout(out, tag="registry:2.8.1")
    return out


@pytest.fixture(scope="session")
def multiarch_tar(multiarch_dir, variants_dir) -> Path:
    out = variants_dir / "multiarch-oci.tar"
    if not out.exists():
        tar_folder(multiarch_dir, out)
    return out


@pytest.fixture(scope="session")
def all_formats(seed_tar, docker_tar, oci_tar, oci_dir, multiarch_dir, multiarch_tar) -> dict[str, Path]:
    return {
        "crane-tarball": seed_tar,
        "docker-save-legacy": docker_tar,
        "oci-archive": oci_tar,
        "oci-layout": oci_dir,
        "multiarch-layout": multiarch_dir,
        "multiarch-archive": multiarch_tar,
    }
