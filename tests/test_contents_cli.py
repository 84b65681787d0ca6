"""`regtui files`, `regtui cat` and verify's dive CI thresholds, run as a user runs them (a subprocess), checked
against the independent oracle."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import contents_oracle as oracle


def run(tmp_path: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "regtui", *args], capture_output=True, env=env, timeout=120, check=False
    )
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def _one_line_error(proc: subprocess.CompletedProcess[bytes], code: int, *words: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode == code, err
    assert err.startswith("regtui: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and all(w in err for w in words), err


def test_files_json_is_the_final_image(archives, umoci_layout, tmp_path):
    tree, _ = oracle.apply_layers(oracle.layout_layers(umoci_layout))
    expected = oracle.flatten(tree)
    proc = run(tmp_path, "files", str(archives["oci-archive"]), "--json", check=True)
    data = json.loads(proc.stdout)
    got = {e["path"].lstrip("/"): e for e in data["entries"]}
    assert set(got) == set(expected)
    for p, m in expected.items():
        if m is not None:
            assert (got[p]["kind"], got[p]["mode"], got[p]["link"]) == (m.kind, oct(m.mode), m.link), p
            if m.kind == "file":
                assert got[p]["size"] == m.size
    assert data["wasted_bytes"] == oracle.dive_analysis(oracle.layout_layers(umoci_layout))["wasted"]
    assert data["offenders"][0]["path"] == "/usr/lib/libz.so.1"


def test_files_tree_layer_changes_and_find(archives, umoci_layout, tmp_path):
    arc = str(archives["docker-archive"])
    tree = run(tmp_path, "files", arc, "--layer", "4", check=True).stdout.decode()
    lines = tree.splitlines()
    assert any(line.startswith("D ") and line.rstrip().endswith("share/") for line in lines)
    assert any(line.startswith("M ") and line.rstrip().endswith("libz.so.1") for line in lines)
    changed = json.loads(run(tmp_path, "files", arc, "--layer", "4", "--changes", "--json", check=True).stdout)
    _, marks = oracle.apply_layers(oracle.layout_layers(umoci_layout))
    want = {p: m for p, m in marks[3] if m in ("added", "modified")}
    got = {e["path"].lstrip("/"): e["mark"] for e in changed["entries"] if e["mark"] in ("added", "modified")}
    assert got == want
    removed = {e["path"] for e in changed["entries"] if e["mark"] == "removed"}
    assert removed == {"/usr/share", "/usr/share/doc", "/usr/share/doc/readme.md", "/usr/share/doc/other.txt"}
    per_layer = json.loads(run(tmp_path, "files", arc, "--changes", "--json", check=True).stdout)
    assert [c["counts"]["removed"] for c in per_layer] == [sum(m == "removed" for _, m in ms) for ms in marks]
    found = json.loads(run(tmp_path, "files", arc, "--find", "/etc/a.txt", "--json", check=True).stdout)
    assert found == [
        {
            "path": "/etc/a.txt",
            "in_image": False,
            "versions": [
                {**found[0]["versions"][0], "layer": 1, "mark": "added", "kind": "file", "size": 6},
                {**found[0]["versions"][1], "layer": 2, "mark": "removed", "kind": "whiteout"},
            ],
        }
    ]
    glob = run(tmp_path, "files", arc, "*.so*", check=True).stdout.decode()
    assert "/usr/lib/libz.so" not in glob  # /usr/lib is a file in the final image: its old contents are gone
    sub = run(tmp_path, "files", arc, "/etc", "--by-size", check=True).stdout.decode().splitlines()
    assert sub[0].rstrip().endswith("etc/") and sub[1].rstrip().endswith("new.conf")


def test_cat_streams_exact_bytes_and_pretty_prints(archives, umoci_layout, tmp_path):
    layers = oracle.layout_layers(umoci_layout)
    big = next(m for m in layers[0] if m.path == "opt/app/big.bin")
    for fmt in ("oci-archive", "docker-archive"):
        raw = run(tmp_path, "cat", str(archives[fmt]), "/opt/app/big.bin", "--layer", "1", check=True).stdout
        assert hashlib.sha256(raw).hexdigest() == big.sha and len(raw) == 70_000
    only = run(tmp_path, "cat", f"{archives['oci-archive']}:img:t", "opt/app/only", check=True).stdout
    assert only == b"only, changed\n"
    pretty = run(
        tmp_path, "cat", str(archives["oci-archive"]), "/opt/app/big.bin", "--layer", "1", "--pretty", check=True
    )
    text = pretty.stdout.decode()
    assert f"sha256:{big.sha}" in text and "70000 bytes" in text and text.count("\n00000") >= 10
    shown = run(tmp_path, "cat", str(archives["oci-archive"]), "/etc/passwd", "--pretty", check=True)
    assert "root:x:0:0:root:/root:/bin/sh" in shown.stdout.decode()
    assert "sha256:" in shown.stderr.decode()


def test_bad_input_is_one_line(archives, tmp_path):
    arc = str(archives["oci-archive"])
    _one_line_error(run(tmp_path, "cat", arc, "/etc/a.txt"), 1, "not in the image")
    _one_line_error(run(tmp_path, "cat", arc, "/etc/a.txt", "--layer", "3"), 1, "layer 3 does not touch")
    _one_line_error(run(tmp_path, "cat", arc, "/etc", "--raw"), 1, "directory")
    _one_line_error(run(tmp_path, "files", arc, "--layer", "9"), 2, "no layer 9", "1..5")
    _one_line_error(run(tmp_path, "files", arc, "/nope"), 2, "/nope is not in the image")
    _one_line_error(run(tmp_path, "files", str(tmp_path / "missing.tar")), 2, "missing.tar")
    _one_line_error(run(tmp_path, "files", arc, "--image", "other:1"), 2, "no image 'other:1'", "img:t")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--lowest-efficiency", "0.8"], 0),
        (["--lowest-efficiency", "0.95"], 1),
        (["--highest-wasted-bytes", "20K"], 0),
        (["--highest-wasted-bytes", "18KiB"], 1),
        (["--highest-user-wasted-percent", "0.1"], 1),
    ],
)
def test_verify_ci_thresholds(archives, tmp_path, args, code):
    proc = run(tmp_path, "verify", str(archives["oci-archive"]), *args)
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == code, out
    if code:
        assert "fail:" in out and "/usr/lib/libz.so.1" in out and "2 copies" in out
    else:
        assert "✔" in out and "fail:" not in out


def test_verify_threshold_values_are_checked(archives, tmp_path):
    proc = run(tmp_path, "verify", str(archives["oci-archive"]), "--lowest-efficiency", "90")
    assert proc.returncode == 2 and b"outside 0..1" in proc.stderr and b"Traceback" not in proc.stderr
