"""Speed and memory targets for `regtui push` into the Debian docker-registry on loopback.

Run: .venv/bin/python bench/push_bench.py [--size-mib 400]
Builds an OCI layout (the shared seed image plus one random layer of --size-mib), pushes it monolithically
(--chunk-size larger than the layer) and chunked (16M), and reports throughput and the client's peak RSS:
blobs stream from the archive, so memory stays flat whatever the layer size. Measured here (2 cores shared
with the registry, which hashes what it receives): ~175-220 MiB/s, ~48 MiB RSS for a 400 MiB layer.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import SEED
from tests.helpers.push_support import Registry, add_big_layer

TARGETS = {"MiB/s": 100, "peak RSS MiB": 120}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=400)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="push-bench-"))
    failed = False
    try:
        layout = tmp / "layout"
        subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{SEED}", f"oci:{layout}:registry:2.8.1"], check=True)
        add_big_layer(layout, args.size_mib << 20)
        reg = Registry(tmp / "registry").start()
        try:
            for name, chunk in (("monolithic", f"{args.size_mib + 1}M"), ("chunked 16M", "16M")):
                t = time.monotonic()
                r = subprocess.run(
                    [
                        "/usr/bin/time",
                        "-v",
                        sys.executable,
                        "-m",
                        "regtui",
                        "push",
                        "-q",
                        str(layout),
                        f"{reg.host}/{name.split()[0]}",
                        "--chunk-size",
                        chunk,
                    ],
                    capture_output=True,
                    text=True,
                )
                secs = time.monotonic() - t
                if r.returncode != 0:
                    print(f"{name}: push failed: {r.stderr.strip()}")
                    return 1
                rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
                speed = args.size_mib / secs
                ok = speed >= TARGETS["MiB/s"] and rss <= TARGETS["peak RSS MiB"]
                failed |= not ok
                print(
                    f"{name:12} {speed:7.0f} MiB/s (target {TARGETS['MiB/s']})  peak RSS {rss:5.0f} MiB "
                    f"(target {TARGETS['peak RSS MiB']})  {'ok' if ok else 'MISSED'}"
                )
        finally:
            reg.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
