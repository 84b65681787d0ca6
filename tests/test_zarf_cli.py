"""The command line on Zarf packages: inspect (summary first, --json), verify's exit code, hostile packages as
one line, `regtui cache`, and push of a compressed package into a real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import httpx
import pytest

from tests.helpers.distribution import DistributionRegistry
from tests.helpers.zarf_support import ZARF_FIXTURE, fixture_members, variant

FIXTURE = str(ZARF_FIXTURE)


def run(*args: str, cache: Path, tmp: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "REGTUI_DEBUG")}
    env.update(XDG_CACHE_HOME=str(cache), NO_COLOR="1", TERM="dumb", DOCKER_CONFIG=str(cache / "docker"))
    return subprocess.run(
        [sys.executable, "-m", "regtui", *args], capture_output=True, text=True, env=env, timeout=300, cwd=tmp
    )


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regtui: error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_inspect_prints_the_package_first(tmp_path):
    r = run("inspect", FIXTURE, cache=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("Zarf package test-uncompressed 0.0.1  ZarfPackageConfig  amd64")
    crc = zlib.crc32(b"docker.io/library/alpine")
    assert f"docker.io/library/alpine:3.20  → library/alpine:3.20-zarf-{crc}" in r.stdout
    assert r.stdout.index("component test") < r.stdout.index("format: Zarf package")
    doc = json.loads(run("inspect", "--json", FIXTURE, cache=tmp_path).stdout)
    pkg = doc["package"]
    assert doc["format"] == "zarf-package" and pkg["name"] == "test-uncompressed" and pkg["form"] == "tar"
    assert pkg["aggregate_checksum"]["ok"] is True and pkg["signed"] is False
    [comp] = pkg["components"]
    assert comp["images"][0]["zarf_reference"] == f"library/alpine:3.20-zarf-{crc}"


def test_verify_exit_codes(tmp_path):
    r = run("verify", FIXTURE, cache=tmp_path)
    assert r.returncode == 0 and "checksums.txt 7/7 files ok, aggregate ok, unsigned" in r.stdout, r.stdout
    data = bytearray(fixture_members()["sboms.tar"])
    data[1000] ^= 1
    bad = variant(tmp_path / "bad.tar", {"sboms.tar": bytes(data)})
    r = run("verify", str(bad), cache=tmp_path)
    assert r.returncode == 1 and "sboms.tar" in r.stdout and "checksums.txt 6/7 files ok" in r.stdout
    doc = json.loads(run("verify", "--json", str(bad), cache=tmp_path).stdout)
    doc = doc[0] if isinstance(doc, list) else doc
    assert doc["ok"] is False and any(p["check"] == "checksums" for p in doc["problems"])


@pytest.mark.parametrize("cmd", ["inspect", "verify", "serve"])
def test_hostile_package_is_one_line(tmp_path, cmd):
    bad = variant(tmp_path / "y.tar", {"zarf.yaml": b"kind: ZarfPackageConfig\nmetadata: {name: [1]}\n"})
    extra = ["--port", "0"] if cmd == "serve" else []
    one_line_error(run(cmd, str(bad), *extra, cache=tmp_path), "zarf.yaml", "metadata.name must be")
    sums = fixture_members()["checksums.txt"] + b"0" * 64 + b" ../../x\n"
    bad = variant(tmp_path / "c.tar", {"checksums.txt": sums})
    one_line_error(run(cmd, str(bad), *extra, cache=tmp_path), "outside the package")


def test_cache_lists_and_prunes(zarf_forms, tmp_path):
    cache = tmp_path / "cache"
    assert run("inspect", str(zarf_forms["tar.zst"]), cache=cache).returncode == 0
    assert run("inspect", str(zarf_forms["split"]), cache=cache).returncode == 0
    r = run("cache", cache=cache)
    assert r.returncode == 0 and "tar.zst" in r.stdout and "split" in r.stdout and "in 2 package(s)" in r.stdout
    entries = json.loads(run("cache", "--json", cache=cache).stdout)
    assert {e["form"] for e in entries} == {"tar.zst", "split"} and all(e["bytes"] > 0 for e in entries)
    assert run("cache", "--older-than", "7d", cache=cache).stdout.startswith("removed 0 unpacked packages")
    r = run("cache", "--older-than", "0s", cache=cache)
    assert r.stdout.startswith("removed 2 unpacked packages"), r.stdout
    assert run("cache", cache=cache).stdout.strip() == "the cache holds no unpacked package"
    one_line_error(run("cache", "--older-than", "soon", cache=cache), "--older-than")
    assert run("cache", "--all", cache=cache).returncode == 0


def test_push_compressed_package_with_zarf_tags(zarf_forms, tmp_path):
    with DistributionRegistry(tmp_path / "registry") as reg:
        r = run("push", str(zarf_forms["tar.zst"]), reg.host, "--quiet", cache=tmp_path / "cache")
        assert r.returncode == 0, r.stderr
        crc = zlib.crc32(b"docker.io/library/alpine")
        for ref in ("3.20", f"3.20-zarf-{crc}"):  # pushed under its familiar name, with Zarf's tag too
            h = httpx.head(
                f"{reg.url}/v2/alpine/manifests/{ref}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
            )
            assert h.status_code == 200, ref
            assert (
                h.headers["docker-content-digest"]
                == "sha256:a180ec8e5c7247c920c91508fa4ce86088946cc9e65f4aeb39091038bba88b0b"
            )


def test_expect_matches_original_and_zarf_names(tmp_path):
    digest = "sha256:a180ec8e5c7247c920c91508fa4ce86088946cc9e65f4aeb39091038bba88b0b"
    crc = zlib.crc32(b"docker.io/library/alpine")
    for ref in ("docker.io/library/alpine:3.20", f"library/alpine:3.20-zarf-{crc}"):
        r = run("verify", FIXTURE, "--expect", f"{ref}@{digest}", cache=tmp_path)
        assert r.returncode == 0 and "matched as served" in r.stdout, r.stdout


def _hostile_zst(kind: str, tmp: Path, zarf_forms) -> Path:
    import io
    import tarfile

    import zstandard

    from tests.helpers.zarf_support import split

    if kind == "split-short":
        src = tmp / "p.tar.zst"
        src.write_bytes(zarf_forms["tar.zst"].read_bytes())
        part0 = split(src, src.stat().st_size // 2 + 1)
        src.unlink()
        last = Path(str(part0).replace("part000", "part002"))
        last.write_bytes(last.read_bytes()[:-1])
        return part0
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        if kind == "dotdot":
            info = tarfile.TarInfo("../../escaped")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
        else:  # a bomb: one member declaring a GiB of zeros
            info = tarfile.TarInfo("images/blobs/sha256/" + "2" * 64)
            info.size = 1 << 30
            tf.addfile(info)
    out = tmp / f"{kind}.tar.zst"
    cctx = zstandard.ZstdCompressor(level=1)
    with open(out, "wb") as f, cctx.stream_writer(f) as w:
        w.write(raw.getvalue())
        if kind == "bomb":
            zeros = bytes(1 << 20)
            for _ in range(1024):
                w.write(zeros)
    return out


@pytest.mark.parametrize(
    "kind, needle", [("split-short", "the parts hold"), ("dotdot", ".."), ("bomb", "decompression bomb")]
)
def test_hostile_compressed_package_writes_nothing_outside_the_cache(zarf_forms, tmp_path, kind, needle):
    corpus, cwd, home = tmp_path / "corpus", tmp_path / "cwd", tmp_path / "home"
    for d in (corpus, cwd, home):
        d.mkdir()
    pkg = _hostile_zst(kind, corpus, zarf_forms)
    before = sorted(p.name for p in corpus.iterdir())
    for cmd in ("inspect", "verify"):
        one_line_error(run(cmd, str(pkg), cache=tmp_path / "cache", tmp=cwd), needle)
    assert sorted(p.name for p in corpus.iterdir()) == before and not list(cwd.iterdir())
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()
    zarf_cache = tmp_path / "cache" / "regtui" / "zarf"
    left = [p.name for p in zarf_cache.iterdir() if not p.name.endswith(".lock")] if zarf_cache.exists() else []
    assert left == []
