"""Verification finds a single flipped byte in any blob of any format, and explains it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from regtui.oci import ArchiveError, open_archive
from regtui.oci.cache import load_report, save_report
from regtui.oci.verify import verify_archive


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def _flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


@pytest.mark.parametrize(
    "fmt", ["crane-tarball", "docker-save-legacy", "oci-archive", "oci-layout", "multiarch-layout"]
)
def test_clean_archives_verify(all_formats, fmt):
    report = verify_archive(open_archive(str(all_formats[fmt])))
    assert report.ok, [p.line() for p in report.problems]
    assert report.bytes_hashed == sum(loc.size for loc in open_archive(str(all_formats[fmt])).blobs.values())
    layers = [l for img in open_archive(str(all_formats[fmt])).images() for l in img.layers]
    assert all(report.computed_diff_ids[l.digest] == l.diff_id for l in layers)


@pytest.mark.parametrize("fmt", ["crane-tarball", "docker-save-legacy", "oci-archive", "oci-layout"])
def test_single_flipped_byte_in_any_blob_is_found(all_formats, fmt, tmp_path):
    original = open_archive(str(all_formats[fmt]))
    for n, (digest, loc) in enumerate(sorted(original.blobs.items())):
        copy = _copy(all_formats[fmt], tmp_path / f"copy{n}")
        path = loc.path if not copy.is_dir() else str(copy / os.path.relpath(loc.path, all_formats[fmt]))
        path = str(copy) if not copy.is_dir() else path
        _flip(path, loc.offset + loc.size // 2)
        try:
            report = verify_archive(open_archive(str(copy)))
        except ArchiveError as e:  # a flipped byte in JSON metadata can make it unreadable: also a finding
            assert e.member, e.line()
            continue
        assert not report.ok, f"flipped byte in {digest} ({loc.member}) went unnoticed"
        assert any(digest in p.subject or digest in p.expected for p in report.errors()), [
            p.line() for p in report.problems
        ]


def test_wrong_diff_id_and_layer_order_are_explained(seed_tar, tmp_path):
    import tarfile

    # Rebuild the seed image with two layers swapped in manifest.json: names and digests stay valid.
    out = tmp_path / "swapped.tar"
    with tarfile.open(seed_tar) as src, tarfile.open(out, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "manifest.json":
                doc = json.loads(data)
                layers = doc[0]["Layers"]
                layers[0], layers[1] = layers[1], layers[0]
                data = json.dumps(doc).encode()
                m.size = len(data)
            import io

            dst.addfile(m, io.BytesIO(data))
    report = verify_archive(open_archive(str(out)))
    assert not report.ok
    causes = [p.cause for p in report.errors() if p.check == "diff_id"]
    assert len(causes) == 2 and all("out of order" in c for c in causes)


def test_truncated_gzip_layer_is_a_decompress_problem(tmp_path):
    import gzip
    import hashlib
    import io
    import tarfile

    good = gzip.compress(b"x" * 100000)
    bad = good[: len(good) // 2]
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(b"x" * 100000).hexdigest()]},
    }
    cfg_bytes = json.dumps(cfg).encode()
    members = {
        "sha256:" + hashlib.sha256(cfg_bytes).hexdigest(): cfg_bytes,
        hashlib.sha256(bad).hexdigest() + ".tar.gz": bad,
    }
    names = list(members)
    members["manifest.json"] = json.dumps([{"Config": names[0], "RepoTags": ["t:1"], "Layers": [names[1]]}]).encode()
    out = tmp_path / "trunc.tar"
    with tarfile.open(out, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    report = verify_archive(open_archive(str(out)))
    [p] = report.errors()
    assert p.check == "decompress" and "truncated" in p.found


def test_cache_roundtrip_and_invalidation(seed_tar, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    archive = open_archive(str(seed_tar))
    assert load_report(archive) is None
    report = verify_archive(archive)
    save_report(archive, report)
    cached = load_report(archive)
    assert cached is not None and cached.cached and cached.ok
    assert [c.subject for c in cached.checks] == [c.subject for c in report.checks]
    # Another file with other bytes gets no cached result.
    copy = tmp_path / "copy.tar"
    shutil.copyfile(seed_tar, copy)
    assert load_report(open_archive(str(copy))) is None


def test_progress_reports_bytes(seed_tar):
    seen = []
    archive = open_archive(str(seed_tar))
    verify_archive(archive, progress=lambda done, total, label: seen.append((done, total)))
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] == archive.total_size()


def test_zero_heavy_gzip_layer_stops_at_ratio_unless_raised(tmp_path, monkeypatch):
    import gzip
    import hashlib

    from regtui.oci import hashing
    from regtui.oci.model import Location

    zeros = b"\0" * (64 << 20)
    blob = tmp_path / "zeros.gz"
    blob.write_bytes(gzip.compress(zeros, 9))
    loc = Location(str(blob), 0, blob.stat().st_size)
    monkeypatch.setattr(hashing, "MIN_BOMB_LIMIT", 1 << 20)  # as if the layer were many GiB
    res = hashing.hash_blob(loc, compression="gzip", want_diff_id=True)
    assert res.diff_id is None and "REGTUI_MAX_INFLATE_RATIO" in res.inflate_error
    monkeypatch.setenv("REGTUI_MAX_INFLATE_RATIO", "1100")
    res = hashing.hash_blob(loc, compression="gzip", want_diff_id=True)
    assert res.inflate_error is None and res.diff_id == "sha256:" + hashlib.sha256(zeros).hexdigest()
