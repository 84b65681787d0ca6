"""Every form of a Zarf package (folder, tar, tar.zst, split) opens to the same model; the unpack cache is
streamed, verified, atomic, shared safely by two processes, reused instantly, and refuses hostile input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import zstandard

from regtui.oci import open_archive
from regtui.oci.errors import ArchiveError
from regtui.oci.verify import verify_archive
from regtui.oci.zarf import unpack
from regtui.oci.zarf.cachedir import cache_entries, prune
from regtui.oci.zarf.unpack import release_holds
from tests.helpers.zarf_support import split


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    c = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(c))
    yield c
    release_holds()


def listing(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def _digests(a) -> list[tuple[str, list[str], str]]:
    return [(r.repository, sorted(r.tags), r.manifests[0].digest) for r in a.roots]


def test_every_form_opens_to_the_same_verified_package(zarf_forms, cache):
    opened = {form: open_archive(str(p)) for form, p in zarf_forms.items()}
    want = _digests(opened["tar"])
    assert len(want) == 3
    for form, a in opened.items():
        assert a.package.form == form and _digests(a) == want, form
        report = verify_archive(a)
        assert report.ok, (form, [p.line() for p in report.errors()])
        assert sum(c.check == "checksums" for c in report.checks) == len(a.package.checksums)
    # The folder and the tar are read in place; the compressed forms from the cache, and nothing else.
    assert opened["tar"].package.cache_path is None and opened["folder"].package.cache_path is None
    for form in ("tar.zst", "split"):
        cp = opened[form].package.cache_path
        assert cp and cp.startswith(str(cache)) and all(x.path.startswith(cp) for x in opened[form].blobs.values())
    # An image two components need appears under both.
    alpine = next(i for i in opened["split"].package.images if i.name.original == "docker.io/library/alpine:3.20")
    assert alpine.components == ["core", "app"]


def test_first_open_reports_progress_second_is_instant(zarf_forms, cache):
    seen = []
    zst = zarf_forms["tar.zst"]
    before = listing(zst.parent)
    open_archive(str(zst), progress=seen.append)
    assert seen and seen[-1].read == seen[-1].total == zst.stat().st_size
    assert seen[-1].written > seen[-1].read * 0.9 and seen[-1].speed > 0
    [entry] = cache_entries()
    assert entry.form == "tar.zst" and entry.source == str(zst.resolve()) and entry.bytes > 0
    marker = cache / "regtui" / "zarf" / f"{entry.key}.json"
    created = json.loads(marker.read_text())["created"]
    again = []
    t = time.monotonic()
    open_archive(str(zst), progress=again.append)
    assert time.monotonic() - t < 1.0 and again == []
    assert json.loads(marker.read_text())["created"] == created
    assert listing(zst.parent) == before  # nothing written beside the package


def test_two_processes_opening_at_once_share_one_unpack(zarf_forms, cache, tmp_path):
    code = (
        "import sys; from regtui.oci import open_archive; from regtui.oci.verify import verify_archive;"
        "a = open_archive(sys.argv[1]); r = verify_archive(a); print(r.ok, a.package.cache_path)"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(zarf_forms["split"])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    lines = {o[0].strip() for o in outs}
    assert len(lines) == 1 and lines.pop().startswith("True ")
    root = cache / "regtui" / "zarf"
    assert len(cache_entries()) == 1 and not [n for n in os.listdir(root) if n.startswith(".tmp-")]


# -- split packages -------------------------------------------------------------------------------------
def _split_copy(zarf_forms, tmp_path: Path, size: int = 0, lower: bool = False) -> Path:
    src = tmp_path / "zarf-package-multi-amd64-1.0.0.tar.zst"
    src.write_bytes(zarf_forms["tar.zst"].read_bytes())
    part0 = split(src, size or src.stat().st_size // 3 + 1, capital_keys=not lower)
    src.unlink()
    return part0


def _refused(path: Path, *needles: str) -> str:
    with pytest.raises(ArchiveError) as e:
        open_archive(str(path))
    line = e.value.line()
    assert "\n" not in line
    for n in needles:
        assert n in line, line
    return line


def _cache_is_empty(cache: Path) -> None:
    root = cache / "regtui" / "zarf"
    leftovers = [n for n in os.listdir(root) if not n.endswith(".lock")] if root.exists() else []
    assert leftovers == [], leftovers


def test_split_with_lowercase_keys_opens(zarf_forms, tmp_path):
    assert open_archive(str(_split_copy(zarf_forms, tmp_path, lower=True))).package.form == "split"


def test_split_missing_part(zarf_forms, tmp_path, cache):
    part0 = _split_copy(zarf_forms, tmp_path)
    Path(str(part0).replace("part000", "part002")).unlink()
    _refused(part0, "part002 is missing", "3 parts expected")
    _cache_is_empty(cache)


def test_split_short_part(zarf_forms, tmp_path, cache):
    part0 = _split_copy(zarf_forms, tmp_path)
    p = Path(str(part0).replace("part000", "part003"))
    p.write_bytes(p.read_bytes()[:-10])
    _refused(part0, "the parts hold", "truncated")
    _cache_is_empty(cache)


def test_split_wrong_sha(zarf_forms, tmp_path, cache):
    part0 = _split_copy(zarf_forms, tmp_path)
    head = json.loads(part0.read_text())
    head["Sha256Sum"] = "f" * 64  # parts intact and the right size, but not the file .part000 describes
    part0.write_text(json.dumps(head))
    _refused(part0, "the parts' sha256 is", ".part000 says " + "f" * 64)
    _cache_is_empty(cache)
    # A flipped byte in a part: zstd's own frame checksum or the tar notices first; refused all the same.
    part0 = _split_copy(zarf_forms, tmp_path / "b") if (tmp_path / "b").mkdir() is None else part0
    p = Path(str(part0).replace("part000", "part002"))
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    _refused(part0, "corrupt")
    _cache_is_empty(cache)


def test_split_header_not_json(tmp_path):
    p = tmp_path / "x.tar.zst.part000"
    p.write_text('{"Sha256Sum": "abc", "Bytes": 1, "Count": 1}')
    _refused(p, "not a split package header")


# -- hostile compressed packages -------------------------------------------------------------------------
def _zst_of_members(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_blob_not_matching_its_name_is_refused(tmp_path, cache):
    name = "images/blobs/sha256/" + "0" * 64
    _refused(_zst_of_members(tmp_path / "p.tar.zst", [_file(name, b"not zeros")]), "hashes to sha256:", name)
    _cache_is_empty(cache)


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/../../evil"])
def test_names_leaving_the_package_are_refused(tmp_path, cache, name):
    _refused(_zst_of_members(tmp_path / "p.tar.zst", [_file("zarf.yaml", b"kind: x"), _file(name, b"x")]), "refus")
    _cache_is_empty(cache)
    assert not (tmp_path / "evil").exists()


def test_links_are_refused(tmp_path, cache):
    link = tarfile.TarInfo("images/index.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _refused(_zst_of_members(tmp_path / "p.tar.zst", [(link, None)]), "link or special file")
    _cache_is_empty(cache)


def test_zstd_bomb_is_stopped_before_writing(tmp_path, cache):
    size = 1 << 30
    head = tarfile.TarInfo("images/blobs/sha256/" + "1" * 64)
    head.size = size
    out = tmp_path / "bomb.tar.zst"
    cctx = zstandard.ZstdCompressor(level=1)
    with open(out, "wb") as f, cctx.stream_writer(f) as w:
        w.write(head.tobuf(tarfile.PAX_FORMAT))
        zeros = bytes(1 << 20)
        for _ in range(size >> 20):
            w.write(zeros)
        w.write(bytes(1024))
    assert out.stat().st_size < 1 << 20
    _refused(out, "decompression bomb", "REGTUI_MAX_INFLATE_RATIO")
    _cache_is_empty(cache)


def test_truncated_zstd(zarf_forms, tmp_path, cache):
    p = tmp_path / "cut.tar.zst"
    p.write_bytes(zarf_forms["tar.zst"].read_bytes()[:-5000])
    _refused(p, "truncated")
    _cache_is_empty(cache)


def test_no_space_is_refused_before_unpacking(zarf_forms, cache, monkeypatch):
    # A full disk, as shutil.disk_usage reports it for the cache's file system.
    monkeypatch.setattr(unpack.shutil, "disk_usage", lambda p: SimpleNamespace(free=unpack.RESERVE + 1000))
    _refused(zarf_forms["tar.zst"], "MiB in the cache", "MiB are free", "regtui cache prune")
    _cache_is_empty(cache)


# -- the cache ------------------------------------------------------------------------------------------
def test_cache_list_and_prune(zarf_forms, cache):
    open_archive(str(zarf_forms["tar.zst"]))
    open_archive(str(zarf_forms["split"]))
    assert {e.form for e in cache_entries()} == {"tar.zst", "split"}
    removed, busy = prune(everything=True)
    assert removed == [] and len(busy) == 2  # this process has them open: pinned
    release_holds()
    marker = next((cache / "regtui" / "zarf").glob("*.json"))
    old = time.time() - 3 * 86400
    os.utime(marker, (old, old))
    removed, busy = prune(older_than=86400)
    assert [e.key for e in removed] == [marker.stem] and busy == []
    assert {e.form for e in cache_entries()} == {"tar.zst", "split"} - {removed[0].form}
    removed, _ = prune(everything=True)
    assert len(removed) == 1 and cache_entries() == []
    _cache_is_empty(cache)
    assert open_archive(str(zarf_forms["tar.zst"])).package.cache_path  # unpacked again after a prune


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_stream_reader_reads_every_tar_dialect(fmt):
    from regtui.oci.zarf.tarstream import ChunkStream, members

    long = "components/" + "x" * 140 + ".tar" if fmt != tarfile.USTAR_FORMAT else "components/short.tar"
    files = {long: os.urandom(5000), "zarf.yaml": b"kind: ZarfPackageConfig\n", "empty": b""}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tf:
        d = tarfile.TarInfo("components")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    raw.seek(0)
    stream = ChunkStream(raw)
    got = {}
    try:
        for m in members(stream):
            if m.isreg():
                got[m.name] = stream.read(m.size)
            else:
                assert m.isdir() and m.name == "components"
    finally:
        stream.close()
    assert got == files


def test_waits_for_another_regtui_holding_the_lock(zarf_forms, cache):
    from regtui.oci.zarf.sources import identity
    from regtui.oci.zarf.unpack import zarf_cache_root

    zst = str(zarf_forms["tar.zst"])
    lock = Path(zarf_cache_root()) / f"{identity(zst, [zst])}.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a');"
            "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(1.5)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        seen = []
        t = time.monotonic()
        a = open_archive(zst, progress=seen.append)
        assert time.monotonic() - t >= 1.0  # it waited for the holder instead of unpacking beside it
        assert seen[0].waiting and not seen[-1].waiting and a.package.cache_path
    finally:
        holder.wait(10)


def test_without_the_zstd_program_the_library_unpacks(zarf_forms, tmp_path, cache, monkeypatch):
    from regtui.oci.zarf import zstdproc

    monkeypatch.setattr(zstdproc.shutil, "which", lambda name: None)
    a = open_archive(str(zarf_forms["split"]))
    assert verify_archive(a).ok and len(a.roots) == 3
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(zarf_forms["tar.zst"].read_bytes()[:-5000])
    _refused(cut, "truncated")


def test_split_uncompressed_package(zarf_forms, tmp_path):
    # `zarf package create --max-package-size` on a package with `uncompressed: true`: `.tar.part000`.
    src = tmp_path / "zarf-package-multi-amd64-1.0.0.tar"
    src.write_bytes(zarf_forms["tar"].read_bytes())
    part0 = split(src, src.stat().st_size // 4 + 1)
    src.unlink()
    a = open_archive(str(part0))
    assert a.package.form == "split" and len(a.roots) == 3 and verify_archive(a).ok
