"""Open and verify a ~1 GiB crane-style archive; compare with `sha256sum` and hashlib on the same file.

Run: .venv/bin/python bench/open_verify.py [--size-mib 1024] [--runs 5] [--workdir DIR] [--json]

The archive (go-containerregistry layout: `sha256:<hex>` config, `<hex>.tar.gz` layers, manifest.json) is built
once per workdir, deterministically, from incompressible data, so verification must inflate and hash every
byte. The file is read warm from the page cache in every run (the first run warms it); the figures are CPU
bound, which is what regtui controls.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from isal import isal_zlib

from regtui.oci import open_archive
from regtui.oci.verify import verify_archive

MiB = 1 << 20


def _layer_tar(data: bytes, name: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    pad = (512 - len(data) % 512) % 512
    return info.tobuf(format=tarfile.PAX_FORMAT) + data + bytes(pad) + bytes(1024)


def _random_bytes(seed: str, n: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(rng.randbytes(min(64 * MiB, n - i)) for i in range(0, n, 64 * MiB))  # randbytes caps at 2 Gbit


def build_archive(path: Path, size_mib: int, layer_mib: int = 128) -> Path:
    """Deterministic: the same parameters give the same bytes, so a kept file is reused."""
    stamp = path.with_suffix(".params")
    params = f"{size_mib}/{layer_mib}/v2"
    if path.exists() and stamp.exists() and stamp.read_text() == params:
        return path
    n_layers = max(1, size_mib // layer_mib)
    diff_ids, names = [], []
    tmp = path.with_suffix(".partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(n_layers):
            plain = _layer_tar(_random_bytes(f"regtui-bench-{i}", layer_mib * MiB), f"data/blob{i}.bin")
            gz = isal_zlib.compress(plain, 1, 31)  # random data: stored blocks, as gzip -6 writes for it too
            diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
            names.append(hashlib.sha256(gz).hexdigest() + ".tar.gz")
            _add(tf, names[-1], gz)
            del plain, gz
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "config": {"Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": [
                    {"created": "2024-01-01T00:00:00Z", "created_by": f"ADD blob{i}.bin /data/"}
                    for i in range(n_layers)
                ],
            },
            separators=(",", ":"),
        ).encode()
        config_name = "sha256:" + hashlib.sha256(config).hexdigest()
        _add(tf, config_name, config)
        _add(
            tf,
            "manifest.json",
            json.dumps([{"Config": config_name, "RepoTags": ["bench/big:1"], "Layers": names}]).encode(),
        )
    tmp.rename(path)
    stamp.write_text(params)
    return path


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def median_range(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def measure(path: Path, runs: int) -> dict:
    size = path.stat().st_size
    mib = size / MiB
    out: dict = {"archive_bytes": size}

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    # Warm the page cache once, so every figure below is about CPU, not the disk.
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)

    def open_and_list():
        a = open_archive(str(path))
        assert a.images() and a.tags(), "the bench archive must list its image"

    out["open_seconds"] = median_range([timed(open_and_list) for _ in range(runs)])
    inspect_cmd = [sys.executable, "-m", "regtui", "inspect", "--json", str(path)]
    out["inspect_cli_seconds"] = median_range(
        [timed(lambda: subprocess.run(inspect_cmd, stdout=subprocess.DEVNULL, check=True)) for _ in range(runs)]
    )

    archive = open_archive(str(path))
    verify_runs = max(2, runs // 2)
    reports = []
    times = []
    for _ in range(verify_runs):
        t = time.perf_counter()
        reports.append(verify_archive(archive))
        times.append(time.perf_counter() - t)
    assert all(r.ok for r in reports), [p.line() for p in reports[0].problems]
    out["verify_mib_s"] = median_range([mib / t for t in times])
    out["verify_seconds"] = median_range(times)

    sha = subprocess.run(["sha256sum", "--version"], capture_output=True, text=True)
    if sha.returncode == 0:
        out["sha256sum_mib_s"] = median_range(
            [
                mib / timed(lambda: subprocess.run(["sha256sum", str(path)], stdout=subprocess.DEVNULL, check=True))
                for _ in range(verify_runs)
            ]
        )

    def hashlib_file():
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(MiB):
                h.update(chunk)

    out["hashlib_mib_s"] = median_range([mib / timed(hashlib_file) for _ in range(verify_runs)])
    return out


def render(r: dict) -> str:
    def row(name, v, unit, fmt="{:.0f}"):
        spread = f"{fmt.format(v['min'])}–{fmt.format(v['max'])}"
        return f"| {name} | {fmt.format(v['median'])} {unit} | {spread} | {v['runs']} |"

    lines = [
        f"Archive: {r['archive_bytes'] / MiB:.0f} MiB crane tarball, incompressible gzip layers, warm cache.",
        "",
        "| measure | median | range | runs |",
        "| --- | --- | --- | --- |",
        row(
            "open to a listed model (in process)",
            {k: v * 1000 if k != "runs" else v for k, v in r["open_seconds"].items()},
            "ms",
            "{:.1f}",
        ),
        row("`regtui inspect --json` (process start included)", r["inspect_cli_seconds"], "s", "{:.2f}"),
        row("`regtui verify` (digests + diff_ids, inflating)", r["verify_mib_s"], "MiB/s"),
    ]
    if "sha256sum_mib_s" in r:
        lines.append(row("`sha256sum` of the archive file", r["sha256sum_mib_s"], "MiB/s"))
    lines.append(row("hashlib.sha256 of the archive file, in process", r["hashlib_mib_s"], "MiB/s"))
    v, s = r["verify_mib_s"]["median"], r["hashlib_mib_s"]["median"]
    lines += [
        "",
        f"verify / in-process sha256: {v / s:.2f}× — verify reads every byte once but hashes it twice "
        "(compressed and inflated) and inflates it, on two threads.",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "regtui-bench")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    path = build_archive(args.workdir / f"crane-{args.size_mib}mib.tar", args.size_mib)
    print(f"archive {path} ready in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    result = measure(path, args.runs)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
