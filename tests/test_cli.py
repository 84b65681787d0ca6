"""The command line as users run it: subprocesses, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from regtui.oci import open_archive
from regtui.oci.demo import build_demo, demo_archive_path


def run(*args: str, cache: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "regtui", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(
    "fmt", ["crane-tarball", "docker-save-legacy", "oci-archive", "oci-layout", "multiarch-archive"]
)
def test_inspect_and_verify_every_format(all_formats, fmt, tmp_path):
    path = str(all_formats[fmt])
    r = run("inspect", "--json", path, cache=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format"] == open_archive(path).format
    assert doc["roots"][0]["repository"] == "registry" and doc["roots"][0]["tags"] == ["2.8.1"]
    r = run("inspect", path, cache=tmp_path)
    assert r.returncode == 0 and "registry" in r.stdout and "sha256:" in r.stdout
    r = run("verify", path, cache=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checks passed" in r.stdout


def test_verify_json_and_exit_code_on_corruption(seed_tar, tmp_path):
    bad = tmp_path / "bad.tar"
    data = bytearray(seed_tar.read_bytes())
    loc = open_archive(str(seed_tar)).images()[0].layers[2].location
    data[loc.offset + 1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    r = run("verify", "--json", str(bad), cache=tmp_path)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    assert any(
        p["check"] == "digest" and p["subject"] == open_archive(str(seed_tar)).images()[0].layers[2].digest
        for p in doc["problems"]
    )
    assert "Traceback" not in r.stderr


def test_second_verify_is_cached(seed_tar, tmp_path):
    assert run("verify", str(seed_tar), cache=tmp_path).returncode == 0
    r = run("verify", "--json", str(seed_tar), cache=tmp_path)
    assert json.loads(r.stdout)["cached"] is True
    r = run("verify", "--json", "--no-cache", str(seed_tar), cache=tmp_path)
    assert json.loads(r.stdout)["cached"] is False


@pytest.mark.parametrize(
    "content,expect",
    [
        (b"", "not a tar archive"),
        (b"hello world" * 100, "not a tar archive"),
        (b"\x1f\x8b\x08" + b"\x00" * 600, "compressed"),
    ],
)
def test_bad_archives_get_one_line(tmp_path, content, expect):
    p = tmp_path / "bad.tar"
    p.write_bytes(content)
    for cmd in ("inspect", "verify"):
        r = run(cmd, str(p), cache=tmp_path / "cache", cwd=tmp_path)
        assert r.returncode == 2
        assert "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0] and str(p) in lines[0]


def test_missing_file(tmp_path):
    r = run("inspect", str(tmp_path / "nope.tar"), cache=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr


def test_demo_image_is_deterministic_and_valid(tmp_path, monkeypatch):
    assert build_demo() == build_demo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = demo_archive_path()
    assert path.startswith(str(tmp_path))
    a = open_archive(path)
    [img] = a.images()
    assert img.repository == "demo/hello" and img.tags == ["1.0", "latest"]
    assert len(img.layers) == 3 and all(l.history and l.history.created_by for l in img.layers)
    r = run("verify", path, cache=tmp_path)
    assert r.returncode == 0
    r = run("inspect", cache=tmp_path)  # no archive: the demo image
    assert r.returncode == 0 and "demo/hello" in r.stdout


def test_help_lists_commands(tmp_path):
    r = run("--help", cache=tmp_path)
    assert r.returncode == 0
    for cmd in ("inspect", "verify", "serve", "push", "diff", "tui"):
        assert cmd in r.stdout
