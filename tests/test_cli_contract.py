"""The command line's contract (issue 12): JSON-only stdout in JSON mode, one exit-code rule, messages that name
what is missing, help that says how to open the TUI, layer numbering, piped output, corrupt blobs refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from regtui.oci import open_archive
from regtui.oci.serializations import Variant, serialize
from tests.helpers.tui_support import flip_byte_in_layer
from tests.test_registry_command import Serve


def run(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "regtui", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def indent3(seed_tar) -> str:
    image = open_archive(str(seed_tar)).images()[0]
    return "sha256:" + hashlib.sha256(serialize(image, Variant("docker", indent="   "))).hexdigest()


# -- 13 and 2: serve --log-format json prints only JSON; --refuse-corrupt answers bad blobs with an error ------
def test_serve_json_mode_prints_only_json_and_refuses_corrupt_blobs(seed_tar, tmp_path, indent3):
    bad = tmp_path / "bad.tar"
    digest = flip_byte_in_layer(seed_tar, bad)
    good = open_archive(str(bad)).images()[0].layers[0].digest
    os.environ["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    try:
        s = Serve(
            str(bad), "--port", "0", "--log-format", "json", "--refuse-corrupt", "--expect", f"registry@{indent3}"
        )
    finally:
        del os.environ["XDG_CACHE_HOME"]
    try:
        url = json.loads(s.wait_line(r'"state": "serving"'))["url"]
        with httpx.Client(base_url=url) as c:
            r = c.get(f"/v2/registry/blobs/{digest}")
            assert r.status_code == 404
            err = r.json()["errors"][0]
            assert err["code"] == "BLOB_UNKNOWN" and "failed verification" in err["detail"]
            assert c.get(f"/v2/registry/blobs/{good}").status_code == 200
        s.wait_line(r"BLOB_UNKNOWN")
        assert s.stop() == 0
    finally:
        s.kill()
    events = [json.loads(line) for line in s.seen]  # every line: a bare json.loads must not fail
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["expect", "refuse", "serving"]
    assert events[0]["expected"] == indent3 and events[0]["status"] == "matched-by-variant"
    assert events[1]["digest"] == digest and "expected" in events[1]["reason"]
    assert events[2]["repository"] == "registry" and events[2]["tag"] == "2.8.1"


def test_serve_human_mode_says_what_it_refuses(seed_tar, tmp_path):
    bad = tmp_path / "bad.tar"
    digest = flip_byte_in_layer(seed_tar, bad)
    s = Serve(str(bad), "--port", "0", "--refuse-corrupt")
    try:
        s.wait_line(rf"refusing blob {digest} of {bad}")
        s.url()
        assert s.stop() == 0
    finally:
        s.kill()


# -- 14: one exit-code rule ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("inspect", "/nonexistent.tar"),
        ("verify", "/nonexistent.tar"),
        ("serve", "/nonexistent.tar"),
        ("push", "/nonexistent.tar", "127.0.0.1:1"),
        ("push", "SEED", ""),
        ("inspect", "SEED", "--expect", "registry@sha256:nothex"),
        ("diff", "/nonexistent.tar", "127.0.0.1:1/registry:2.8.1"),
        ("/nonexistent.tar",),
        ("inspect", "--no-such-option"),
    ],
)
def test_bad_arguments_and_unopenable_input_exit_2(args, seed_tar, tmp_path):
    r = run(*[str(seed_tar) if a == "SEED" else a for a in args], cache=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip()


def test_failed_checks_exit_1_and_passing_ones_0(seed_tar, tmp_path, indent3):
    wrong = indent3[:-1] + ("0" if indent3[-1] != "0" else "1")
    for cmd in ("inspect", "verify"):
        assert run(cmd, str(seed_tar), "--expect", f"registry@{indent3}", cache=tmp_path).returncode == 0
        r = run(cmd, str(seed_tar), "--expect", f"registry@{wrong}", cache=tmp_path)
        assert r.returncode == 1, (cmd, r.stdout, r.stderr)
        assert wrong in r.stdout  # whole digests in the explanation, so the wrong one is recognisable
    bad = tmp_path / "bad.tar"
    flip_byte_in_layer(seed_tar, bad)
    assert run("verify", str(bad), cache=tmp_path).returncode == 1
    r = run("inspect", "--json", str(seed_tar), "--expect", f"registry@{wrong}", cache=tmp_path)
    assert r.returncode == 1 and json.loads(r.stdout)["expectations"][0]["status"] == "no-match"


# -- 15: messages, help, numbering -----------------------------------------------------------------------
def test_expect_without_an_image_name_says_the_name_is_missing(seed_tar, tmp_path, indent3):
    r = run("inspect", str(seed_tar), "--expect", indent3, cache=tmp_path)
    assert r.returncode == 2
    assert f"'{indent3}' has no image name; write IMAGE@DIGEST, e.g. registry:2.8.1@{indent3}" in r.stderr


def test_help_says_an_archive_opens_the_tui_and_documents_exit_codes(tmp_path):
    r = run("--help", cache=tmp_path)
    assert r.returncode == 0
    assert "`regtui ARCHIVE...` opens the interactive inspector" in r.stdout
    assert "ARCHIVE... | COMMAND" in r.stdout
    assert "0  done" in r.stdout and "1  a check failed" in r.stdout and "2  bad arguments" in r.stdout


def test_inspect_numbers_layers_from_1_like_the_tui(seed_tar, tmp_path):
    image = open_archive(str(seed_tar)).images()[0]
    r = run("inspect", str(seed_tar), cache=tmp_path)
    rows = [line.split() for line in r.stdout.splitlines() if line[:1].isdigit()]
    assert [row[0] for row in rows] == [str(i) for i in range(1, len(image.layers) + 1)]
    assert [row[1] for row in rows] == [l.digest for l in image.layers]  # whole digests when piped


# -- 16: piped inspect does not wrap -----------------------------------------------------------------------
def test_piped_inspect_keeps_each_layer_on_one_line(tmp_path):
    """A layer whose created_by is long: piped, it stays whole on the layer's line, greppable."""
    from tests.helpers.tarkit import crane_tarball, layer_tar

    long = "RUN " + " && ".join(f"step-{i} --with-a-long-option" for i in range(12))
    path = crane_tarball(tmp_path / "long.tar", [layer_tar({"a": b"a"})], created_by=long)
    r = run("inspect", str(path), cache=tmp_path)
    assert r.returncode == 0, r.stderr
    [line] = [line for line in r.stdout.splitlines() if "step-0" in line]
    assert long in line and line.split()[0] == "1"
