"""Shared fixtures: the shared seed image and variants made from it with real tools (skopeo).

Every fixture made here is built once per session in a temp folder; the shared seed image is read in place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.support import build_multiarch_layout, require_tool, tar_folder

pytest_plugins = ["tests.helpers.zarf_fixtures"]  # Zarf packages in every form, built from the images below

# The shared seed image: $REGTUI_SEED, else shared/fixtures/ beside the checkout (where CI copies it too).
SEED = Path(
    os.environ.get("REGTUI_SEED") or Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "seed-image.tar"
)


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


# -- layer-contents images (tests/test_contents*.py): real umoci layers, converted by skopeo ----------------
def _umoci(*args: str) -> None:
    subprocess.run([require_tool("umoci"), *args], check=True, timeout=60, capture_output=True)


@pytest.fixture(scope="session")
def umoci_layout(tmp_path_factory) -> Path:
    """Five layers from real umoci: a base; a whiteout of a file; an opaque /opt/app; a repack that modifies,
    re-writes identically, changes a mode and deletes a directory; a file written over a directory."""
    root = tmp_path_factory.mktemp("umoci")
    lay = root / "layout"
    _umoci("init", "--layout", str(lay))
    _umoci("new", "--image", f"{lay}:t")
    src = root / "src"
    (src / "etc").mkdir(parents=True)
    (src / "opt/app").mkdir(parents=True)
    (src / "usr/share/doc").mkdir(parents=True)
    (src / "usr/lib").mkdir(parents=True)
    (src / "etc/a.txt").write_text("hello\n")
    (src / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (src / "etc/mode.sh").write_text("#!/bin/sh\necho mode\n")
    (src / "opt/app/big.bin").write_bytes(os.urandom(70_000))
    (src / "opt/app/keep").write_text("x\n")
    (src / "usr/share/doc/readme.md").write_text("# doc\n" * 500)
    (src / "usr/share/doc/other.txt").write_bytes(b"o" * 3000)
    (src / "usr/lib/libz.so.1").write_bytes(os.urandom(9000))
    (src / "usr/lib/libz.so").symlink_to("libz.so.1")
    (src / "usr/lib/loop1").symlink_to("loop2")
    (src / "usr/lib/loop2").symlink_to("loop1")
    os.link(src / "opt/app/keep", src / "opt/app/keep-link")
    _umoci("insert", "--image", f"{lay}:t", str(src), "/")
    _umoci("insert", "--image", f"{lay}:t", "--whiteout", "/etc/a.txt")
    src2 = root / "src2"
    src2.mkdir()
    (src2 / "only").write_text("only\n")
    _umoci("insert", "--image", f"{lay}:t", "--opaque", str(src2), "/opt/app")
    bundle = root / "bundle"
    _umoci("unpack", "--rootless", "--image", f"{lay}:t", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "opt/app/only").write_text("only, changed\n")
    passwd = rootfs / "etc/passwd"
    passwd.write_text(passwd.read_text())  # same bytes, new mtime: dive calls this unmodified
    os.utime(passwd, (1_000_000_000, 1_000_000_000))
    (rootfs / "etc/mode.sh").chmod(0o755)
    subprocess.run(["rm", "-rf", str(rootfs / "usr/share")], check=True)
    (rootfs / "etc/new.conf").write_bytes(b"n" * 1234)
    (rootfs / "usr/lib/libz.so.1").write_bytes(os.urandom(9500))
    _umoci("repack", "--image", f"{lay}:t", str(bundle))
    src3 = root / "src3"
    src3.mkdir()
    (src3 / "lib").write_bytes(b"a file where a directory was\n")
    _umoci("insert", "--image", f"{lay}:t", str(src3 / "lib"), "/usr/lib")
    return lay


@pytest.fixture(scope="session")
def archives(umoci_layout, tmp_path_factory) -> dict[str, Path]:
    skopeo = require_tool("skopeo")
    out = tmp_path_factory.mktemp("conv")
    res = {"oci-layout": umoci_layout}
    for name, transport in (("oci-archive", "oci-archive"), ("docker-archive", "docker-archive")):
        dst = out / f"{name}.tar"
        subprocess.run(
            [skopeo, "copy", "-q", f"oci:{umoci_layout}:t", f"{transport}:{dst}:img:t"], check=True, timeout=120
        )
        res[name] = dst
    return res
