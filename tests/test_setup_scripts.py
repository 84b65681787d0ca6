"""`./scripts/run` on a fresh copy of the tree (issue 12): it installs only what running needs, quietly."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_license_is_an_spdx_expression():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "Apache-2.0"
    assert any(r.startswith("setuptools>=77") for r in meta["build-system"]["requires"])


@pytest.mark.slow
def test_scripts_run_installs_only_what_running_needs(tmp_path):
    tree = tmp_path / "clone"
    tree.mkdir()
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes(src.read_bytes())
            os.chmod(tree / name, src.stat().st_mode)
    # apt-get and dpkg-query are not on this PATH: the run set-up must not need them.
    env = {**os.environ, "PATH": f"{tree / 'nobin'}:/usr/local/bin:/usr/bin:/bin"}
    (tree / "nobin").mkdir()
    for tool in ("apt-get", "dpkg-query", "sudo"):
        (tree / "nobin" / tool).write_text(f"#!/bin/sh\necho called {tool} >&2\nexit 99\n")
        os.chmod(tree / "nobin" / tool, 0o755)
    r = subprocess.run(["./scripts/run", "--version"], cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "regtui, version 0.1.0"
    assert "called" not in r.stderr and "deprecated" not in r.stderr and "*****" not in r.stderr
    assert r.stderr.strip().splitlines() == ["setup: installing regtui (run) and its Python dependencies into .venv"]
    venv_bin = tree / ".venv" / "bin"
    assert not (venv_bin / "pytest").exists() and not (venv_bin / "ruff").exists()  # test tools: not installed
    again = subprocess.run(
        ["./scripts/run", "--version"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0 and again.stderr == ""  # the second run installs nothing
