"""Layer contents (issue 13): indexing a ≥ 1 GiB image against `tar -tzf` over the same layers, a second open
from the cache, and the TUI's key latency with a Files tree of ≥ 200k paths open.

Run: .venv/bin/python bench/contents_bench.py [--size-mib 1100] [--files 60000] [--tree-paths 200000]
Builds an OCI layout of gzip layers (files of mixed sizes, half random and half text, `--size-mib` of gzip in
all), then times: `tar -tzf` on each layer (GNU tar + gzip, the usual way to list a layer), regtui's indexing of
the image with an empty cache (which also checks every digest and diff_id on the way), the same with the cache
warm, and key presses in the real app's Files view over a layer of `--tree-paths` empty files.
Prints a Markdown table; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from isal import isal_zlib
from textual import events

from regtui.oci import open_archive
from regtui.oci.contents import load_image_files
from regtui.tui.app import RegtuiApp
from tests.helpers.support import free_port
from tests.test_contents_hostile import _many_tiny

TARGETS = {"index / tar -tzf": 1.2, "second open s": 1.0, "key press p99 ms": 50.0}
LAYERS = 4
WORDS = b"layer image registry digest manifest config whiteout opaque tar gzip index blob file path ".split()


def _blob(layout: Path, data: bytes) -> dict:
    d = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / d).write_bytes(data)
    return {"digest": f"sha256:{d}", "size": len(data)}


def _content(rng: random.Random, size: int) -> bytes:
    if rng.random() < 0.5:
        return os.urandom(size)
    words = [rng.choice(WORDS) for _ in range(size // 3 + 1)]
    return b" ".join(words)[:size]


def build(layout: Path, size_mib: int, files: int) -> tuple[list[Path], int]:
    """LAYERS gzip layers of `files` files in all; returns the layer blob paths and the gzip bytes."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    rng = random.Random(13)
    # half random (stored as-is by gzip), half text (~4:1): aim the gzip total at size_mib
    mean = int((size_mib << 20) / files / 0.62)
    layers, diff_ids, paths = [], [], []
    for n in range(LAYERS):
        tmp = layout / "layer.tar"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
            for i in range(files // LAYERS):
                size = min(int(rng.expovariate(1 / mean)), 64 << 20)
                info = tarfile.TarInfo(f"usr/lib/pkg{n}-{i // 200:04d}/file-{i:06d}.{rng.choice(['so', 'py', 'txt'])}")
                info.size, info.mode, info.mtime = size, 0o644, 1_700_000_000
                tf.addfile(info, io.BytesIO(_content(rng, size)))
        raw = tmp.read_bytes()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        packed = isal_zlib.compress(raw, 1, wbits=31)
        del raw
        desc = _blob(layout, packed)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **desc})
        paths.append(layout / "blobs" / "sha256" / desc["digest"][7:])
        tmp.unlink()
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, json.dumps(cfg).encode())}
    man = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    }
    desc = {
        "mediaType": man["mediaType"],
        **_blob(layout, json.dumps(man).encode()),
        "annotations": {"org.opencontainers.image.ref.name": "big:1"},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    return paths, sum(p.stat().st_size for p in paths)


def time_tar(paths: list[Path]) -> float:
    t = time.perf_counter()
    for p in paths:
        subprocess.run(["tar", "-tzf", str(p)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def time_index(layout: Path, cache: Path, *, warm: bool) -> tuple[float, int]:
    os.environ["XDG_CACHE_HOME"] = str(cache)
    if not warm:
        shutil.rmtree(cache, ignore_errors=True)
    image = open_archive(str(layout)).images()[0]
    t = time.perf_counter()
    files = load_image_files(image)
    took = time.perf_counter() - t
    assert files.complete, [i.problems for i in files.layers]
    return took, sum(len(i) for i in files.layers)


async def key_latency(layout: Path, presses: int) -> dict[str, float]:
    app = RegtuiApp([str(layout)], "127.0.0.1", free_port(), measure=False)
    async with app.run_test(size=(150, 42)) as pilot:
        while app.selection is None:
            await pilot.pause(0.05)
        await pilot.press("9")
        view = app.query_one("#files-view")
        while view.view is None:
            await pilot.pause(0.1)
        paths = len(view.view)
        tree = app.query_one("#files-tree")
        tree.focus()
        await pilot.press("l", "l", "l", "l", "l", "l", "l", "l")  # open usr/share/many/dir000
        await pilot.pause(0.5)
        times = []
        for i in range(presses):
            before = tree.cursor_line
            key = "j" if (i // 20) % 2 == 0 else "k"
            event = events.Key(key, key)
            event.set_sender(app)
            t = time.perf_counter()
            app._driver.send_message(event)  # what the terminal driver does on a key press
            while tree.cursor_line == before:
                await asyncio.sleep(0.0005)
            times.append(time.perf_counter() - t)
            await asyncio.sleep(0.02)
        await pilot.press("q")
    times.sort()
    return {
        "tree paths": paths,
        "key press p50 ms": 1000 * statistics.median(times),
        "key press p99 ms": 1000 * times[max(0, int(len(times) * 0.99) - 1)],
    }


def make_tree_layout(layout: Path, n: int) -> None:
    from tests.test_contents_hostile import make_layout

    make_layout(layout, [_many_tiny(n)])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1100)
    ap.add_argument("--files", type=int, default=60_000)
    ap.add_argument("--tree-paths", type=int, default=200_000)
    ap.add_argument("--presses", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="regtui-contents-bench-"))
    rows: list[tuple[str, float, float | None]] = []
    try:
        t = time.monotonic()
        blobs, gz = build(tmp / "layout", args.size_mib, args.files)
        print(
            f"built {gz / (1 << 30):.2f} GiB of gzip layers ({args.files} files) in {time.monotonic() - t:.0f} s",
            file=sys.stderr,
        )
        load = os.getloadavg()[0]
        tar_s = min(time_tar(blobs) for _ in range(2))
        cold = [time_index(tmp / "layout", tmp / "cache", warm=False) for _ in range(2)]
        index_s, entries = min(cold)
        warm_s = min(time_index(tmp / "layout", tmp / "cache", warm=True)[0] for _ in range(3))
        make_tree_layout(tmp / "tree", args.tree_paths)
        os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
        keys = asyncio.run(key_latency(tmp / "tree", args.presses))
        rows = [
            ("image gzip GiB", gz / (1 << 30), None),
            ("entries", entries, None),
            ("tar -tzf s (all layers)", tar_s, None),
            ("regtui index s (cold cache)", index_s, None),
            ("index / tar -tzf", index_s / tar_s, TARGETS["index / tar -tzf"]),
            ("second open s", warm_s, TARGETS["second open s"]),
            ("Files tree paths", keys["tree paths"], None),
            ("key press p50 ms", keys["key press p50 ms"], None),
            ("key press p99 ms", keys["key press p99 ms"], TARGETS["key press p99 ms"]),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = False
    print(f"Load average before: {load:.2f}; 2 CPUs. regtui's index also checks every digest and diff_id.\n")
    print("| measure | value | target |\n| --- | --- | --- |")
    for name, value, target in rows:
        miss = target is not None and value > target
        failed |= miss
        shown = f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"
        print(f"| {name} | {shown} | {'' if target is None else f'≤ {target}' + (' MISSED' if miss else ' ✓')} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
