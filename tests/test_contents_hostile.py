"""Hostile layers: each gives a clear problem and a partial index marked incomplete (or the bad entry skipped),
writes nothing outside the cache, and keeps memory bounded."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from regtui.oci import open_archive
from regtui.oci.contents import load_image_files
from regtui.oci.contents.index import Indexer
from regtui.oci.contents.read import ContentError, read_file
from tests.helpers.tarkit import Entry, file, folder, sym, tar_bytes


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _blob(layout: Path, data: bytes) -> dict:
    d = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / d).write_bytes(data)
    return {"digest": f"sha256:{d}", "size": len(data)}


def make_layout(layout: Path, tars: list[bytes], *, gz: bool = True, zstd: bool = False) -> Path:
    """An OCI layout (one image, tag `t`) whose layers are exactly these tars (gzipped when `gz`, or zstd)."""
    (layout / "blobs/sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layers = []
    for t in tars:
        if zstd:
            data, suffix = zstandard.ZstdCompressor().compress(t), "+zstd"
        else:
            data, suffix = (gzip.compress(t, mtime=0), "+gzip") if gz else (t, "")
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + suffix, **_blob(layout, data)})
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]},
    }
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, json.dumps(cfg).encode())}
    man = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    }
    desc = {
        "mediaType": man["mediaType"],
        **_blob(layout, json.dumps(man).encode()),
        "annotations": {"org.opencontainers.image.ref.name": "t"},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    return layout


def _files(layout: Path):
    img = open_archive(str(layout)).images()[0]
    return img, load_image_files(img)


def _problems(files) -> str:
    return "\n".join(p for idx in files.layers for p in idx.problems)


def test_bad_names_are_skipped_with_a_reason_and_nothing_escapes(tmp_path):
    evil = tar_bytes(
        [
            folder("etc"),
            file("etc/ok", "fine"),
            file("../escape", "x"),
            file("a/../../up", "x"),
            file("/abs/file", "abs"),
            file("d/" + "n" * 5000, "long"),
            file(".wh..", ""),
            file("etc/.wh.", ""),
        ]
    )
    img, files = _files(make_layout(tmp_path / "lay", [evil]))
    text = _problems(files)
    assert "climbs out with '..'" in text and "absolute name '/abs/file'" in text
    assert "a name of 5002 bytes" in text and "would delete the root" in text
    assert files.complete  # skipped entries, not a damaged stream
    assert sorted(p for k, p in enumerate(files.paths) if files.visible[k]) == ["abs", "abs/file", "etc", "etc/ok"]
    assert read_file(files, img.layers, "abs/file").head == b"abs"
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.startswith(("lay/", "cache/regtui/contents/")) for p in written), written
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "up").exists()


def test_truncated_tar_gives_a_partial_index(tmp_path):
    whole = tar_bytes([file("a", "A" * 100), file("b", os.urandom(20_000)), file("c", "C")])
    cut = whole[: 512 + 512 + 512 + 8000]  # inside b's data
    img, files = _files(make_layout(tmp_path / "lay", [cut]))
    assert not files.complete
    assert "the tar ends inside a member" in _problems(files) and "truncated" in _problems(files)
    assert [files.layers[0].path(j) for j in range(len(files.layers[0]))] == ["a", "b"]
    assert read_file(files, img.layers, "a").head == b"A" * 100
    with pytest.raises(ContentError, match=r"ends .* before the file does"):
        read_file(files, img.layers, "b")


def test_truncated_gzip_and_garbage(tmp_path):
    good = tar_bytes([file(f"f{i}", os.urandom(3000)) for i in range(40)])
    lay = make_layout(tmp_path / "lay", [good, os.urandom(4096)])
    # cut the first layer's gzip stream in half, and keep the layout consistent with the cut blob
    man_digest = json.loads((lay / "index.json").read_text())["manifests"][0]["digest"]
    man = json.loads((lay / "blobs/sha256" / man_digest[7:]).read_bytes())
    first = lay / "blobs/sha256" / man["layers"][0]["digest"][7:]
    half = first.read_bytes()[: first.stat().st_size // 2]
    man["layers"][0].update(_blob(lay, half))
    desc = _blob(lay, json.dumps(man).encode())
    idx = json.loads((lay / "index.json").read_text())
    idx["manifests"][0].update(desc)
    (lay / "index.json").write_text(json.dumps(idx))
    _, files = _files(lay)
    assert not files.layers[0].complete and not files.layers[1].complete
    assert "gzip stream ends early" in "\n".join(files.layers[0].problems)
    assert 0 < len(files.layers[0]) < 40
    assert "corrupt tar header at byte 0" in "\n".join(files.layers[1].problems)


def test_link_loops_and_hard_link_cycles_are_reported(tmp_path):
    t = tar_bytes(
        [
            sym("a", "b"),
            sym("b", "/a"),
            Entry("h1", kind="hard", link="h2"),
            Entry("h2", kind="hard", link="h1"),
            folder("d"),
            sym("d/up", "../d/up"),
        ]
    )
    img, files = _files(make_layout(tmp_path / "lay", [t], gz=False))
    for path in ("a", "d/up"):
        with pytest.raises(ContentError, match="link loop"):
            read_file(files, img.layers, path)
    with pytest.raises(ContentError, match=r"no layer holds|link loop"):
        read_file(files, img.layers, "h1")


def test_huge_pax_header_stops_the_scan(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(tarfile.TarInfo("before"))
        info = tarfile.TarInfo("huge")
        info.pax_headers = {"comment": "x" * (2 << 20)}
        tf.addfile(info)
    _, files = _files(make_layout(tmp_path / "lay", [buf.getvalue()]))
    assert not files.complete and "metadata block" in _problems(files)
    assert files.layers[0].path(0) == "before"


def test_entry_limit_marks_the_index_incomplete(tmp_path, monkeypatch):
    monkeypatch.setenv("REGTUI_MAX_LAYER_ENTRIES", "500")
    t = tar_bytes([file(f"many/f{i}", "") for i in range(2000)])
    _, files = _files(make_layout(tmp_path / "lay", [t]))
    assert not files.complete and len(files.layers[0]) == 500
    assert "more than 500 entries" in _problems(files) and "REGTUI_MAX_LAYER_ENTRIES" in _problems(files)


def _many_tiny(n: int) -> bytes:
    """A tar of `n` empty files, headers written directly (tarfile takes too long for 100k)."""
    out = bytearray()
    for i in range(n):
        name = f"usr/share/many/dir{i // 1000:03d}/file-{i:07d}.txt".encode()
        h = bytearray(512)
        h[0 : len(name)] = name
        h[100:108] = b"0000644\0"
        h[108:116] = h[116:124] = b"0000000\0"
        h[124:136] = b"00000000000\0"
        h[136:148] = b"00000000000\0"
        h[156:157] = b"0"
        h[257:263] = b"ustar\0"
        h[263:265] = b"00"
        h[148:156] = b" " * 8
        h[148:156] = f"{sum(h):06o}\0 ".encode()
        out += h
    return bytes(out + bytes(1024))


def test_memory_stays_bounded_for_many_tiny_files(tmp_path):
    n = 100_000
    lay = make_layout(tmp_path / "lay", [_many_tiny(n)])
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (this test process's, large)
    code = f"""
from regtui.oci import open_archive
from regtui.oci.contents import load_image_files
from regtui.oci.contents.index import COLUMNS
def kib(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
img = open_archive({str(lay)!r}).images()[0]
before = kib("VmRSS:")
files = load_image_files(img)
after = kib("VmHWM:")
idx = files.layers[0]
cols = sum(len(getattr(idx, c)) * getattr(idx, c).itemsize for c, _ in COLUMNS)
print(files.complete, len(idx), (after - before) * 1024, cols, len(idx.names))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ}, check=True
    ).stdout.split()
    complete, entries, grown, columns, names = out[0] == "True", *map(int, out[1:])
    assert complete and entries == n
    # ~60 bytes an entry in the index columns, the path bytes, and a few hundred in the merged path table:
    # a million entries stay well under a GiB
    assert columns / n < 64 and names / n < 50
    assert 0 < grown < 600 * n, f"{grown / n:.0f} bytes per entry"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_scanner_survives_mutated_and_random_tars(data):
    """Flipped bytes, cuts and random input: the scanner reports problems, never raises, never hits a parser bug
    (its catch-all line), and every path it records is relative and free of '..'."""
    base = tar_bytes(
        [
            folder("etc"),
            file("etc/a", "A" * 700),
            sym("l", "etc/a"),
            file("x/.wh.y", ""),
            file("d/.wh..wh..opq", ""),
            file("n" * 150, "long name"),
        ]
    )
    blob = bytearray(base if data.draw(st.booleans()) else data.draw(st.binary(max_size=4096)))
    for _ in range(data.draw(st.integers(0, 6))):
        if blob:
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    blob = blob[: data.draw(st.integers(0, len(blob)))]
    ix = Indexer("sha256:x", None)
    step = data.draw(st.integers(1, 2000))
    for i in range(0, len(blob), step):
        ix.feed(bytes(blob[i : i + step]))
    idx = ix.finish()
    assert not any(p.startswith("cannot read the tar at byte") for p in idx.problems), idx.problems
    for j in range(len(idx)):
        p = idx.path(j)
        assert not p.startswith("/") and ".." not in p.split("/")


def test_zstd_layers_index_and_read(tmp_path):
    big = os.urandom(300_000)
    img, files = _files(
        make_layout(
            tmp_path / "lay",
            [
                tar_bytes([folder("opt"), file("opt/big", big)]),
                tar_bytes([file("opt/.wh.big", ""), file("opt/new", "n")]),
            ],
            zstd=True,
        )
    )
    assert files.complete and [i.compression for i in files.layers] == ["zstd", "zstd"]
    got = read_file(files, img.layers, "opt/big", layer=0)
    assert got.sha256 == hashlib.sha256(big).hexdigest() and got.size == len(big)
    with pytest.raises(ContentError, match="not in the image"):
        read_file(files, img.layers, "opt/big")
