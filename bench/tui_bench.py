"""Responsiveness of the TUI (issue 4: key presses answered promptly while 64 clients pull a large image and
while verification hashes a 1 GiB archive).

Run: .venv/bin/python bench/tui_bench.py [--size-mib 1024] [--clients 64] [--seconds 8]
Builds an OCI layout of gzip layers (random data, `--size-mib` in all), runs the real app headless with its
embedded server, then measures the event loop's lag (what delays every key press and redraw) and the time for
a key press to move a table cursor: idle, while `--clients` curl processes pull the layers, while verification
hashes the archive, and with both at once. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from isal import isal_zlib
from textual import events

from regtui.tui.app import RegtuiApp
from tests.helpers.support import free_port

TARGETS = {"loop lag p99 ms": 100, "key press max ms": 200}
LAYERS = 4


def _blob(layout: Path, data: bytes) -> dict:
    d = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / d).write_bytes(data)
    return {"digest": f"sha256:{d}", "size": len(data)}


def build(layout: Path, size_mib: int) -> list[str]:
    """An OCI layout with LAYERS gzip layers of random bytes; returns the layer digests."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layers, diff_ids = [], []
    per = (size_mib << 20) // LAYERS
    for _ in range(LAYERS):
        tmp = layout / "layer.tmp"
        raw, packed = hashlib.sha256(), hashlib.sha256()
        comp = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
        size = 0
        with open(tmp, "wb") as f:
            for _ in range(per >> 20):
                chunk = os.urandom(1 << 20)
                raw.update(chunk)
                out = comp.compress(chunk)
                packed.update(out)
                size += len(out)
                f.write(out)
            out = comp.flush()
            packed.update(out)
            size += len(out)
            f.write(out)
        tmp.rename(layout / "blobs" / "sha256" / packed.hexdigest())
        layers.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": f"sha256:{packed.hexdigest()}",
                "size": size,
            }
        )
        diff_ids.append(f"sha256:{raw.hexdigest()}")
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, config)}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cdesc,
            "layers": layers,
        },
        separators=(",", ":"),
    ).encode()
    mdesc = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **_blob(layout, manifest),
        "annotations": {"org.opencontainers.image.ref.name": "big:1"},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [mdesc]}))
    return [l["digest"] for l in layers]


async def measure(pilot, seconds: float) -> dict[str, float]:
    """Loop lag (oversleep of a 10 ms timer) and key-press-to-cursor-move times over `seconds`."""
    app = pilot.app
    table = app.query_one("#layers-table")
    table.focus()
    lags: list[float] = []
    presses: list[float] = []
    stop = time.monotonic() + seconds

    async def lag_probe():
        while time.monotonic() < stop:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)

    probe = asyncio.create_task(lag_probe())
    while time.monotonic() < stop:
        before = table.cursor_row
        key = "j" if before == 0 else "k"
        event = events.Key(key, key)
        event.set_sender(app)
        t = time.perf_counter()
        app._driver.send_message(event)  # what the terminal driver does on a key press
        while table.cursor_row == before:
            await asyncio.sleep(0.001)
        presses.append(time.perf_counter() - t)
        await asyncio.sleep(0.1)
    await probe
    lags.sort()
    return {
        "loop lag p50 ms": 1000 * statistics.median(lags),
        "loop lag p99 ms": 1000 * lags[int(len(lags) * 0.99) - 1],
        "key press p50 ms": 1000 * statistics.median(presses),
        "key press max ms": 1000 * max(presses),
    }


def start_clients(url: str, n: int, seconds: float) -> list[subprocess.Popen]:
    # Each client pulls the blob again and again until the time is up (curl's own loop via --max-time).
    return [
        subprocess.Popen(
            [
                "bash",
                "-c",
                f"end=$((SECONDS+{int(seconds) + 2})); while [ $SECONDS -lt $end ]; "
                f"do curl -s -o /dev/null --max-time {int(seconds) + 2} {url}; done",
            ],
            start_new_session=True,
        )
        for _ in range(n)
    ]


def stop_clients(procs: list[subprocess.Popen]) -> None:
    for p in procs:  # bash and its curl: the whole process group
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        p.wait()


async def run(
    layout: Path, digests: list[str], clients: int, seconds: float, server_thread: bool = True
) -> dict[str, dict[str, float]]:
    port = free_port()
    app = RegtuiApp([str(layout)], "127.0.0.1", port, measure=False, server_thread=server_thread)
    out: dict[str, dict[str, float]] = {}
    async with app.run_test(size=(150, 42)) as pilot:
        while app.selection is None:
            await pilot.pause(0.05)
        out["idle"] = await measure(pilot, 2)
        await pilot.press("s")
        while app.live.server.state != "serving":
            await pilot.pause(0.05)
        await pilot.press("1")
        url = f"http://127.0.0.1:{port}/v2/big/blobs/{digests[0]}"
        procs = start_clients(url, clients, seconds)
        await pilot.pause(1)
        out[f"{clients} clients pulling"] = await measure(pilot, seconds)
        for p in procs:
            p.wait()
        out[f"{clients} clients pulling"]["requests seen"] = app.live.requests_total
        out[f"{clients} clients pulling"]["GiB served"] = app.live.bytes_total / (1 << 30)
        await pilot.press("v", "1")
        out["verifying"] = await measure(pilot, min(seconds, 4))
        while str(layout) not in app.verify_reports and not app.verify_errors:
            await pilot.pause(0.1)
        await pilot.press("v", "1")
        procs = start_clients(url, clients, seconds)
        out["verifying + pulling"] = await measure(pilot, min(seconds, 4))
        stop_clients(procs)
        await pilot.press("q")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--shared-loop", action="store_true", help="serve on the app's own event loop")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="regtui-tui-bench-"))
    try:
        t = time.monotonic()
        digests = build(tmp / "layout", args.size_mib)
        print(f"built {args.size_mib} MiB of gzip layers in {time.monotonic() - t:.1f} s")
        results = asyncio.run(run(tmp / "layout", digests, args.clients, args.seconds, not args.shared_loop))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = False
    for phase, values in results.items():
        print(f"{phase}:")
        for name, value in values.items():
            target = TARGETS.get(name)
            miss = target is not None and value > target
            failed |= miss
            print(
                f"  {name:<18} {value:9.1f}" + (f"   (target ≤ {target}{'  MISSED' if miss else ''})" if target else "")
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
