"""Layer contents (regtui.oci.contents): images built by umoci (add, overwrite, delete, opaque-replace, a file
over a directory), converted by skopeo; the merged tree, marks, waste, find and cat checked against an
independent computation (tests/contents_oracle.py: tarfile + nested dicts + dive's algorithm, literally)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from regtui.oci import open_archive
from regtui.oci.contents import load_image_files
from regtui.oci.contents.find import find
from regtui.oci.contents.merge import MARK_NAMES, NONE, unpack
from regtui.oci.contents.read import read_file
from regtui.oci.contents.tarscan import KIND_NAMES
from regtui.oci.contents.waste import analyze
from tests.helpers import contents_oracle as oracle


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _load(path: Path, **kw):
    img = open_archive(str(path)).images()[0]
    return img, load_image_files(img, **kw)


def _final(files) -> dict[str, tuple | None]:
    out: dict[str, tuple | None] = {}
    for k, p in enumerate(files.paths):
        if files.visible[k]:
            v = files.visible_version(k)
            out[p] = None if v is None else (v.kind, v.size, v.mode, v.link)
    return out


def _oracle_final(layers) -> dict[str, tuple | None]:
    tree, _ = oracle.apply_layers(layers)
    return {p: None if m is None else (m.kind, m.size, m.mode, m.link) for p, m in oracle.flatten(tree).items()}


@pytest.mark.parametrize("fmt", ["oci-layout", "oci-archive", "docker-archive"])
def test_merged_tree_and_marks_match_the_spec(archives, umoci_layout, fmt):
    expected_layers = oracle.layout_layers(umoci_layout)
    _, files = _load(archives[fmt])
    assert files.complete, [i.problems for i in files.layers]
    assert len(files.layers) == 5
    assert _final(files) == _oracle_final(expected_layers)
    final = _final(files)
    assert "etc/a.txt" not in final  # whiteout
    assert "opt/app/big.bin" not in final and "opt/app/keep" not in final  # opaque directory
    assert final["opt/app/only"][1] == len("only, changed\n")
    assert "usr/share" not in final and "usr/share/doc/readme.md" not in final  # a directory deleted
    assert final["usr/lib"][0] == "file" and "usr/lib/libz.so.1" not in final  # a file over a directory
    _, marks = oracle.apply_layers(expected_layers)
    for i in range(len(files.layers)):
        ours = [
            (files.paths[k] if k != 0xFFFFFFFF else "", MARK_NAMES[m])
            for k, m in zip(files.ids[i], files.marks[i], strict=True)
        ]
        assert ours == [(p, m) for p, m in marks[i] if p], f"layer {i}"
    counts = files.counts(3)
    assert counts["unchanged"] >= 1 and counts["modified"] >= 2 and counts["removed"] == 1 and counts["added"] >= 1
    assert dict(marks[3])["etc/passwd"] == "unchanged" and dict(marks[3])["etc/mode.sh"] == "modified"


@pytest.mark.parametrize("fmt", ["oci-layout", "docker-archive"])
def test_waste_matches_dive(archives, umoci_layout, fmt):
    expected = oracle.dive_analysis(oracle.layout_layers(umoci_layout))
    _, files = _load(archives[fmt])
    w = analyze(files)
    assert w.wasted_bytes == expected["wasted"] > 0
    assert w.efficiency == pytest.approx(expected["efficiency"])
    assert w.user_wasted_percent == pytest.approx(expected["user_wasted_percent"])
    assert {(o.path, o.count, o.bytes) for o in w.offenders} == expected["offenders"]
    assert w.top(1)[0].path == "usr/lib/libz.so.1"  # written twice (9000 + 9500 bytes), then replaced
    assert w.efficiency < 1.0
    # hidden bytes: what the layers store that the final image cannot show (opaque-hidden big.bin included)
    assert sum(w.layer_hidden_bytes) == files.hidden_bytes() >= 70_000 + 9000 + 9500


def test_find_and_cat_against_tarfile(archives, umoci_layout):
    expected_layers = oracle.layout_layers(umoci_layout)
    img, files = _load(archives["oci-archive"])
    found, truncated = find(files, "/usr/lib/libz.so.1")
    assert not truncated and len(found) == 1 and not found[0].in_image
    assert [(v.layer, v.size, v.mark) for v in found[0].versions] == [(0, 9000, "added"), (3, 9500, "modified")]
    txt, _ = find(files, "*.txt")
    assert {f.path for f in txt} == {"etc/a.txt", "usr/share/doc/other.txt"}
    assert [v.mark for v in next(f for f in txt if f.path == "etc/a.txt").versions] == ["added", "removed"]
    deep, _ = find(files, "usr/share/*/*.md")
    assert [f.path for f in deep] == ["usr/share/doc/readme.md"]
    # every regular file of every layer reads back with tarfile's bytes
    for i, members in enumerate(expected_layers):
        for m in members:
            if m.kind == "file" and not m.path.rpartition("/")[2].startswith(".wh."):
                got = read_file(files, img.layers, m.path, layer=i)
                assert got.sha256 == m.sha and got.size == m.size, (i, m.path)
    assert read_file(files, img.layers, "/etc/passwd").head == b"root:x:0:0:root:/root:/bin/sh\n"
    assert read_file(files, img.layers, "/etc/passwd").is_text
    hard = read_file(files, img.layers, "opt/app/keep-link", layer=0)  # a hard link reads its target's bytes
    assert hard.head == b"x\n"


def test_cat_follows_symlinks_and_reports_loops(archives, tmp_path):
    img, files = _load(archives["docker-archive"])  # uncompressed layers: read at the member's offset
    from regtui.oci.contents.read import ContentError

    with pytest.raises(ContentError, match="not in the image"):
        read_file(files, img.layers, "etc/a.txt")
    with pytest.raises(ContentError, match=r"layer 3 does not touch etc/a\.txt; it is in layers 1, 2"):
        read_file(files, img.layers, "etc/a.txt", layer=2)
    old = read_file(files, img.layers, "etc/a.txt", layer=0)
    assert old.head == b"hello\n" and old.sha256 == hashlib.sha256(b"hello\n").hexdigest()
    link = read_file(files, img.layers, "usr/lib/libz.so", layer=0)
    assert link.kind == "symlink" and link.link == "libz.so.1"
    with pytest.raises(ContentError, match="is not in the image"):
        read_file(files, img.layers, "/usr/lib/libz.so")  # /usr/lib is a file now
    binary = read_file(files, img.layers, "opt/app/big.bin", layer=0, head=100)
    assert not binary.is_text and binary.size == 70_000 and len(binary.head) == 100 and binary.truncated


def test_second_open_is_from_the_cache_and_shared_layers_index_once(archives, tmp_path):
    _, first = _load(archives["oci-archive"])
    assert not any(i.cached for i in first.layers)
    cache = tmp_path / "cache" / "regtui" / "contents"
    assert len(list(cache.glob("*.idx"))) == 5
    _, again = _load(archives["oci-archive"])
    assert all(i.cached for i in again.layers)
    assert _final(again) == _final(first)
    # the OCI layout holds the very same blobs: another archive, same digests, nothing re-indexed
    _, other = _load(archives["oci-layout"])
    assert all(i.cached for i in other.layers)
    # a corrupt cache file is a miss, never an error
    victim = min(cache.glob("*.idx"))
    victim.write_bytes(victim.read_bytes()[:100])
    _, fixed = _load(archives["oci-archive"])
    assert _final(fixed) == _final(first) and sum(not i.cached for i in fixed.layers) == 1


def test_seed_image_against_tarfile(seed_tar, tmp_path):
    import tarfile

    arc = open_archive(str(seed_tar))
    img = arc.images()[0]
    files = load_image_files(img)
    assert files.complete
    with tarfile.open(seed_tar) as tf:
        layers = [oracle.read_layer(tf.extractfile(l.location.member).read()) for l in img.layers]
    assert _final(files) == _oracle_final(layers)
    w = analyze(files)
    expected = oracle.dive_analysis(layers)
    assert (w.wasted_bytes, w.efficiency) == (expected["wasted"], pytest.approx(expected["efficiency"]))
    assert [len(i) for i in files.layers] == [len(m) for m in layers]
    for k in range(len(files)):
        v = files.visible_version(k)
        if v is not None:
            assert KIND_NAMES.index(v.kind) >= 0 and files.present[k] != NONE and unpack(files.present[k])[0] == v.layer


def test_measuring_a_layer_indexes_it_in_the_same_read_and_the_cache_never_vouches(archives, tmp_path):
    import shutil

    from regtui.oci.contents.index import load_cached
    from regtui.tui.measure import measure_layer
    from tests.helpers.tui_support import flip_byte_in_layer

    img = open_archive(str(archives["oci-archive"])).images()[0]
    for layer in img.layers:
        assert load_cached(layer.digest) is None
        facts = measure_layer(layer)
        assert facts is not None and facts.ok and facts.uncompressed_size > 0
        assert load_cached(layer.digest) is not None  # indexed by the measuring pass itself
    files = load_image_files(img)
    assert all(i.cached for i in files.layers)
    # a copy with one flipped byte claims the same digests: the cached index must not make it pass
    bad = tmp_path / "bad.tar"
    digest = flip_byte_in_layer(archives["oci-archive"], bad)
    layer = next(l for l in open_archive(str(bad)).images()[0].layers if l.digest == digest)
    facts = measure_layer(layer)
    assert facts is not None and not facts.ok
    shutil.rmtree(tmp_path / "cache")
    idx = load_image_files(open_archive(str(bad)).images()[0]).layers
    assert any(not i.complete and "not cached" in " ".join(i.problems) for i in idx)
    assert load_cached(digest) is None  # a blob that does not hash to its digest is never cached
