"""Speed and memory targets for `regtui serve` (REFERENCE.md: distribution does ~1.86 GiB/s single stream,
~1.5 GiB/s aggregate at 64 clients with 310 MiB RSS, ~1.6k manifest req/s).

Run: .venv/bin/python bench/registry_bench.py [--size-mib 256]
Serves a generated OCI layout with one random blob from a `regtui serve` subprocess on 127.0.0.1, pulls it with
curl (one stream, then 64 at once) and hammers a manifest with wrk. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.registry_harness import build_layout
from tests.helpers.support import free_port

TARGETS = {"single MiB/s": 1000, "aggregate MiB/s": 1500, "peak RSS MiB": 160, "manifest req/s": 1000}


def rss_peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--clients", type=int, default=64)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="regtui-bench-"))
    proc = None
    try:
        d = build_layout(tmp / "layout", ["big:1"], [os.urandom(args.size_mib << 20)])
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "regtui", "serve", str(tmp / "layout"), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        blob = f"{base}/v2/big/blobs/{d['layers'][0]}"
        for _ in range(100):
            if subprocess.run(["curl", "-sf", "-o", "/dev/null", f"{base}/v2/"]).returncode == 0:
                break
            time.sleep(0.1)
        results: dict[str, float] = {}
        best = 0.0
        for _ in range(3):
            out = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", blob], capture_output=True, text=True
            ).stdout
            best = max(best, float(out) / (1 << 20))
        results["single MiB/s"] = best
        t = time.perf_counter()
        curls = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", blob]) for _ in range(args.clients)]
        for c in curls:
            c.wait()
        results["aggregate MiB/s"] = args.clients * args.size_mib / (time.perf_counter() - t)
        results["peak RSS MiB"] = rss_peak_mib(proc.pid)
        if shutil.which("wrk"):
            out = subprocess.run(
                ["wrk", "-t2", "-c32", "-d5s", f"{base}/v2/big/manifests/1"], capture_output=True, text=True
            ).stdout
            m = re.search(r"Requests/sec:\s+([\d.]+)", out)
            results["manifest req/s"] = float(m.group(1)) if m else 0.0
    finally:
        if proc is not None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    missed = 0
    for name, value in results.items():
        target = TARGETS[name]
        ok = value <= target if "RSS" in name else value >= target
        missed += not ok
        bound = "<=" if "RSS" in name else ">="
        print(f"{name:>16}: {value:8.0f}  (target {bound} {target})  {'ok' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
