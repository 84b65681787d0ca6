"""Speed target for digest forensics: the whole serialization search stays well under a second per image.

Run: .venv/bin/python bench/forensics_bench.py [ARCHIVE]   (default: the shared seed image)
Also times a synthetic 127-layer image (the most layers overlayfs stacks), the worst realistic case.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import os
import sys
import time
from copy import deepcopy
from pathlib import Path

from regtui.oci import open_archive
from regtui.oci.forensics import apply_expectations, parse_expectation
from regtui.oci.model import Descriptor, Layer
from regtui.oci.serializations import candidates

TARGET_S = 0.25  # per image, for a search that misses (the slowest path)
SEED = os.environ.get("REGTUI_SEED") or str(Path(__file__).resolve().parents[2] / "shared/fixtures/seed-image.tar")


def best_of(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else SEED
    ok = True
    archive = open_archive(path)
    image = archive.images()[0]
    wide = deepcopy(image)
    base = image.layers[0]
    wide.layers = [
        Layer(Descriptor(base.descriptor.media_type, f"sha256:{i:064x}", 1000 + i), None, None, None, "gzip")
        for i in range(127)
    ]
    for label, img in ((f"{image.repository} ({len(image.layers)} layers)", image), ("synthetic, 127 layers", wide)):
        secs = best_of(lambda img=img: candidates(img))
        n = len(candidates(img))
        ok &= secs < TARGET_S
        print(f"candidates  {label:<28} {n:5d} digests  {secs * 1000:7.1f} ms  (target < {TARGET_S * 1000:.0f} ms)")
    miss = [parse_expectation(f"{image.repository}@sha256:" + "0" * 64)]
    secs = best_of(lambda: apply_expectations(open_archive(path), miss), 3)
    ok &= secs < 1.0
    print(f"apply (miss, incl. open)  {secs * 1000:7.1f} ms  (target < 1000 ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
