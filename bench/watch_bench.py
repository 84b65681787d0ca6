"""A stalled `regtui watch` must not slow the registry (issue 15): 64 clients pull a blob from `regtui serve --events`
with no watcher, and with a watcher that connected and then stopped reading (plus one that keeps reading).

Run: .venv/bin/python bench/watch_bench.py [--clients 64] [--size-mib 64] [--runs 5]

Runs alternate (none, stalled, none, stalled, ...) on one server process, so drift on a shared machine hits both;
before each, untimed, 1000 requests with large event objects fill a stalled watcher's socket buffers and its queue,
so the stalled runs happen while the server drops events for it. A watcher that keeps reading is connected
throughout (it costs the same in both kinds). The figure is the aggregate MiB/s of all clients; the target is
"stalled" within 5% of "none", compared run by run (median of the ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from open_verify import build_archive  # noqa: E402
from serve import REPO, MiB, Server, curl_many, free_port, rss_mib, wait_ready  # noqa: E402


def prefill(port: int, n: int = 1000) -> None:
    """Requests whose event objects are large (a 4000-character name): ~16 KB of events each, enough to fill a
    stalled watcher's socket buffers and queue, so that during the timed run the server is dropping for it."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(n):
        conn.request("GET", f"/v2/{'a' * 4000}/manifests/{i}")
        conn.getresponse().read()
    conn.close()


def stalled_watcher(port: int) -> socket.socket:
    """Connects, reads the response head, then never reads again."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /_regtui/events HTTP/1.1\r\nHost: bench\r\n\r\n")
    head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return s


def dropped_for(sock: socket.socket, quiet: float = 1.0) -> int:
    """Read the stalled watcher at last, until the stream goes quiet: how many events the server dropped for it
    (the sum of its "dropped" markers)."""
    sock.settimeout(quiet)
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except TimeoutError:
        pass
    return sum(
        json.loads(line[6:])["count"] for line in data.split(b"\n") if line.startswith(b'data: {"event": "dropped"')
    )


class ReadingWatcher(threading.Thread):
    """A watcher that keeps up: counts the messages it gets (and any "dropped" marker)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"GET /_regtui/events HTTP/1.1\r\nHost: bench\r\n\r\n")
        self.messages = 0
        self.dropped = 0

    def run(self) -> None:
        rest = b""
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            rest += chunk
            *lines, rest = rest.split(b"\n")
            for line in lines:
                if line.startswith(b"data: "):
                    self.messages += 1
                    if b'"event": "dropped"' in line:
                        self.dropped += json.loads(line[6:])["count"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--size-mib", type=int, default=64, help="size of the blob each client pulls")
    ap.add_argument("--runs", type=int, default=5, help="runs of each kind")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="regtui-watch-bench-"))
    archive = build_archive(
        Path(tempfile.gettempdir()) / f"regtui-watch-bench-{args.size_mib}.tar", args.size_mib, layer_mib=args.size_mib
    )
    port = free_port()
    log = work / "serve.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "regtui",
                "serve",
                str(archive),
                "--port",
                str(port),
                "--events",
                "--log-format",
                "json",
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    srv = Server("regtui", port, proc, log=log)
    try:
        wait_ready(srv)
        from regtui.oci import open_archive

        image = open_archive(str(archive)).images()[0]
        layer = max(image.layers, key=lambda l: l.descriptor.size)
        blob_url = srv.url(f"/v2/{REPO}/blobs/{layer.digest}")
        size = layer.descriptor.size
        reading = ReadingWatcher(port)
        reading.start()
        curl_many(blob_url, 4, size)  # warm the page cache
        results: dict[str, list[float]] = {"none": [], "stalled": []}
        pairs: list[float] = []
        lost: list[int] = []
        stalled: list[socket.socket] = []
        for _ in range(args.runs):
            for kind in ("none", "stalled"):
                if kind == "stalled":
                    stalled.append(stalled_watcher(port))
                prefill(port)  # also before "none" runs: the same work, untimed, either way
                wall, _ = curl_many(blob_url, args.clients, size)
                results[kind].append(args.clients * size / MiB / wall)
                pairs.append(results[kind][-1])
                for s in stalled:
                    lost.append(dropped_for(s))
                    s.close()
                stalled.clear()
        rss = rss_mib(proc.pid)
    finally:
        srv.stop()
    none, stall = statistics.median(results["none"]), statistics.median(results["stalled"])
    ratio = stall / none
    # Each stalled run against the none run just before it: drift on a shared machine cancels out.
    paired = statistics.median(pairs[i + 1] / pairs[i] for i in range(0, len(pairs), 2))
    print(f"# regtui serve --events, {args.clients} clients x {args.size_mib} MiB, {args.runs} runs each\n")
    print("| watcher | aggregate MiB/s (median) | runs |")
    print("|---|---|---|")
    for kind, values in results.items():
        print(f"| {kind} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    print(
        f"\nstalled / none: medians {ratio:.3f}, run by run {paired:.3f} "
        f"(target >= 0.95: {'met' if paired >= 0.95 else 'MISSED'}); load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(
        f"the stalled watchers lost {', '.join(map(str, lost))} events (the server dropped them: its queue for "
        f"them stayed bounded); a reading watcher got {reading.messages} messages, {reading.dropped} dropped; "
        f"server RSS at the end {rss:.0f} MiB"
    )
    return 0 if paired >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
