"""regtui serve vs distribution (docker-registry) vs nginx, on loopback, in one run (issue 7).

Run: bench/run (installs what is missing, then this), or .venv/bin/python bench/serve.py [--quick] [--out FILE]

One test image — a crane tarball with an incompressible ~256 MiB gzip layer — served three ways:
  regtui        `regtui serve` on the tarball, in place;
  distribution  `docker-registry serve` (filesystem storage), the image pushed into it with `skopeo copy`;
  nginx         the same blobs and manifest as static files (sendfile): the practical limit of this machine.
Each figure is the median of several runs, with its range; ratios are regtui / other, from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from open_verify import build_archive  # noqa: E402

MiB, GiB = 1 << 20, 1 << 30
REPO, TAG = "bench/big", "1"
ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
)
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- process accounting (the server and its workers) -----------------------------------------------------
def tree(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_mib(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class PeakRSS:
    """Samples the server tree's RSS every 50 ms while a stage runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            self._stop.wait(0.05)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mib(self.pid))


# -- the three servers --------------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    manifest_digest: str = ""
    log: Path | None = None
    results: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_ready(srv: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            tail = srv.log.read_text(errors="replace")[-2000:] if srv.log else ""
            raise RuntimeError(f"{srv.name} exited with {srv.proc.returncode}: {tail}")
        if subprocess.run(["curl", "-sf", "-o", "/dev/null", srv.url("/v2/")]).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{srv.name} did not answer /v2/ within {timeout}s")


def manifest_digest(srv: Server) -> str:
    out = subprocess.run(
        [
            "curl",
            "-sf",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            f"Accept: {ACCEPT}",
            srv.url(f"/v2/{REPO}/manifests/{TAG}"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"(?im)^docker-content-digest:\s*(\S+)", out)
    return m.group(1) if m else ""


REGTUI_WORKERS = 1  # `regtui serve --workers`, set by --regtui-workers


def start_regtui(archive: Path, work: Path) -> Server:
    port = free_port()
    log = work / "regtui.log"
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
                "--workers",
                str(REGTUI_WORKERS),
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    srv = Server("regtui", port, proc, log=log)
    wait_ready(srv)
    return srv


def start_regtui_workers(archive: Path, work: Path, workers: int) -> Server:
    """Experiment: regtui's app under `hypercorn -w N` (separate processes, one accept socket), which
    differs from `regtui serve --workers N` only in printing no per-request log lines."""
    module = work / "regtui_bench_app.py"
    module.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from regtui.oci import open_archive\nfrom regtui.registry.app import create_app\n"
        f"app = create_app([open_archive({str(archive)!r})])\n"
    )
    port = free_port()
    log = work / f"hypercorn-{workers}w.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "hypercorn"),
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{port}",
                "--keep-alive",
                "30",
                "regtui_bench_app:app",
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=work,
        )
    srv = Server(f"regtui app, hypercorn -w {workers}", port, proc, log=log)
    wait_ready(srv)
    return srv


def start_distribution(archive: Path, work: Path, source: Server | None = None) -> Server:
    port = free_port()
    folder = work / "distribution"
    folder.mkdir()
    cfg = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(folder / "storage")},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    (folder / "config.yml").write_text(json.dumps(cfg))
    log = folder / "registry.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [shutil.which("docker-registry") or "/usr/bin/docker-registry", "serve", str(folder / "config.yml")],
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    srv = Server("distribution", port, proc, log=log)
    wait_ready(srv)
    # From regtui's registry rather than from the tarball: skopeo's docker-archive source re-compresses layers,
    # a registry-to-registry copy keeps blob and manifest bytes, so all three serve the very same bytes.
    src = f"docker://127.0.0.1:{source.port}/{REPO}:{TAG}" if source else f"docker-archive:{archive}"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            src,
            f"docker://127.0.0.1:{port}/{REPO}:{TAG}",
        ],
        check=True,
        timeout=600,
    )
    return srv


def start_nginx(archive: Path, work: Path) -> Server:
    """Static files laid out as the registry paths: what a CDN or a dumb mirror would do."""
    from regtui.oci import open_archive

    a = open_archive(str(archive))
    img = a.images()[0]
    root = work / "nginx"
    blobs = root / "v2" / REPO / "blobs"
    manifests = root / "v2" / REPO / "manifests"
    blobs.mkdir(parents=True)
    manifests.mkdir(parents=True)
    for digest, loc in a.blobs.items():
        with open(loc.path, "rb") as src, open(blobs / digest, "wb") as dst:
            src.seek(loc.offset)
            remaining = loc.size
            while remaining:
                chunk = src.read(min(8 * MiB, remaining))
                dst.write(chunk)
                remaining -= len(chunk)
    m = img.manifest
    (manifests / TAG).write_bytes(m.data)
    (manifests / m.digest).write_bytes(m.data)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = root.parent / "nginx.conf"
    conf.write_text(f"""
{user}
worker_processes auto;
daemon off;
pid {root.parent}/nginx.pid;
error_log {root.parent}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log {root.parent}/nginx-access.log;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path {root.parent}/nginx-tmp; proxy_temp_path {root.parent}/nginx-tmp;
  fastcgi_temp_path {root.parent}/nginx-tmp; uwsgi_temp_path {root.parent}/nginx-tmp;
  scgi_temp_path {root.parent}/nginx-tmp;
  types {{ }}
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location = /v2/ {{ default_type application/json; return 200 '{{}}'; }}
    location /v2/{REPO}/manifests/ {{ default_type {m.media_type}; add_header Docker-Content-Digest {m.digest}; }}
  }}
}}
""")
    log = root.parent / "nginx-error.log"
    proc = subprocess.Popen(
        [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(root.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    srv = Server("nginx", port, proc, log=log)
    wait_ready(srv)
    return srv


# -- measurements --------------------------------------------------------------------------------------------
def med(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def curl_many(url: str, n: int, size: int) -> tuple[float, list[float]]:
    """n concurrent full downloads: (wall seconds, per-client MiB/s)."""
    fmt = "%{http_code} %{size_download} %{speed_download}\n"
    t = time.perf_counter()
    procs = [
        subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", fmt, url], stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t
    speeds = []
    for o in outs:
        code, got, speed = o.split()
        if code != "200" or int(got) != size:
            raise RuntimeError(f"{url}: HTTP {code}, {got} of {size} bytes")
        speeds.append(float(speed) / MiB)
    return wall, speeds


def bench_single(srv: Server, blob_url: str, size: int, runs: int) -> None:
    speeds, cpu = [], []
    for _ in range(runs):
        c0 = cpu_seconds(srv.proc.pid)
        _, [s] = curl_many(blob_url, 1, size)
        cpu.append((cpu_seconds(srv.proc.pid) - c0) / (size / GiB))
        speeds.append(s)
    srv.results["single MiB/s"] = med(speeds)
    srv.results["CPU s/GiB"] = med(cpu)


def bench_concurrent(srv: Server, blob_url: str, size: int, clients: int, runs: int) -> None:
    agg, fair, rss = [], [], []
    for _ in range(runs):
        with PeakRSS(srv.proc.pid) as peak:
            wall, speeds = curl_many(blob_url, clients, size)
        agg.append(clients * size / MiB / wall)
        fair.append(min(speeds) / max(speeds))
        rss.append(peak.peak)
    srv.results[f"{clients} clients MiB/s"] = med(agg)
    srv.results[f"{clients} clients slowest/fastest"] = med(fair)
    srv.results[f"{clients} clients peak RSS MiB"] = med(rss)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def bench_wrk(srv: Server, what: str, path: str, runs: int, seconds: int) -> None:
    rates, p50, p99 = [], [], []
    for _ in range(runs):
        out = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-H", f"Accept: {ACCEPT}", srv.url(path)],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        ).stdout
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        if bad:
            raise RuntimeError(f"{srv.name} {what}: {bad.group(1)} error responses\n{out}")
        rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
        p50.append(_ms(re.search(r"\s50%\s+(\S+)", out).group(1)))
        p99.append(_ms(re.search(r"\s99%\s+(\S+)", out).group(1)))
    srv.results[f"manifest by {what} req/s"] = med(rates)
    srv.results[f"manifest by {what} p50 ms"] = med(p50)
    srv.results[f"manifest by {what} p99 ms"] = med(p99)


def bench_pull(srv: Server, work: Path, runs: int) -> None:
    walls = []
    for i in range(runs):
        dest = work / f"pull-{srv.name}-{i}"
        t = time.perf_counter()
        subprocess.run(
            [
                "skopeo",
                "copy",
                "-q",
                "--src-tls-verify=false",
                f"docker://127.0.0.1:{srv.port}/{REPO}:{TAG}",
                f"dir:{dest}",
            ],
            check=True,
            timeout=600,
        )
        walls.append(time.perf_counter() - t)
        shutil.rmtree(dest)
    srv.results["skopeo pull s"] = med(walls)


# -- report -------------------------------------------------------------------------------------------------
LOWER_IS_BETTER = ("CPU", "RSS", "ms", "pull s")
ROWS = [
    "single MiB/s",
    "CPU s/GiB",
    "16 clients MiB/s",
    "16 clients slowest/fastest",
    "16 clients peak RSS MiB",
    "64 clients MiB/s",
    "64 clients slowest/fastest",
    "64 clients peak RSS MiB",
    "manifest by tag req/s",
    "manifest by tag p50 ms",
    "manifest by tag p99 ms",
    "manifest by digest req/s",
    "manifest by digest p50 ms",
    "manifest by digest p99 ms",
    "skopeo pull s",
]


def fmt(v: float) -> str:
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}"


def cell(r: dict | None) -> str:
    if not r:
        return "—"
    return f"{fmt(r['median'])} ({fmt(r['min'])}–{fmt(r['max'])})"


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or not b["median"]:
        return "—"
    return f"{a['median'] / b['median']:.2f}×"


def table(servers: dict[str, Server]) -> str:
    r, d, n = (servers.get(k) for k in ("regtui", "distribution", "nginx"))
    lines = [
        "| measure | regtui | distribution | nginx | regtui/distribution | regtui/nginx |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in ROWS:
        vals = [s.results.get(row) if s else None for s in (r, d, n)]
        if not any(vals):
            continue
        better = "lower is better" if any(k in row for k in LOWER_IS_BETTER) else ""
        name = f"{row}" + (f" ({better})" if better else "")
        lines.append(
            f"| {name} | {cell(vals[0])} | {cell(vals[1])} | {cell(vals[2])} | {ratio(vals[0], vals[1])} | "
            f"{ratio(vals[0], vals[2])} |"
        )
    return "\n".join(lines)


def experiment_table(exp: Server, dist: Server | None) -> str:
    lines = ["| measure | regtui app, more workers | distribution | ratio |", "| --- | --- | --- | --- |"]
    for row in ROWS:
        if row in exp.results:
            d = dist.results.get(row) if dist else None
            lines.append(f"| {row} | {cell(exp.results[row])} | {cell(d)} | {ratio(exp.results[row], d)} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (
            l.split(":", 1)[1].strip()
            for l in Path("/proc/cpuinfo").read_text().splitlines()
            if l.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        int(l.split()[1]) // 1024 for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")
    )

    def version(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout or p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    from importlib.metadata import version as pkg

    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"
    return (
        f"{os.cpu_count()} × {cpu}, {mem} MiB RAM, Linux {platform.release()}, Debian {debian}; "
        f"Python {platform.python_version()}, Quart {pkg('quart')}, Hypercorn {pkg('hypercorn')}; "
        f"{version(['docker-registry', '--version'])}; "
        f"{version(['nginx', '-v'])}; {version(['wrk', '-v'])}; {version(['skopeo', '--version'])}; "
        f"{version(['curl', '--version'])[:12]}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5, help="runs of the quick measures (single stream, wrk)")
    ap.add_argument("--heavy-runs", type=int, default=3, help="runs of the heavy ones (concurrent, pulls)")
    ap.add_argument("--wrk-seconds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs: a smoke test of the bench")
    ap.add_argument("--only", default="regtui,distribution,nginx")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "regtui-bench")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    ap.add_argument(
        "--regtui-workers",
        type=int,
        default=2,
        help="regtui serve --workers N (processes; the issue allows several for request rate)",
    )
    ap.add_argument(
        "--stages",
        help="only these stages, comma-separated: single,16,64,tag,digest,pull "
        "(e.g. --only regtui,distribution --stages single,64,tag for a quick check)",
    )
    ap.add_argument(
        "--experiment-workers",
        type=int,
        default=2,
        help="also measure manifest requests of regtui's app under `hypercorn -w N` (0: skip)",
    )
    args = ap.parse_args()
    global REGTUI_WORKERS
    REGTUI_WORKERS = args.regtui_workers
    if args.quick:
        args.runs, args.heavy_runs, args.wrk_seconds = 2, 1, 2
    for tool in ("curl", "wrk", "skopeo", "nginx", "docker-registry"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            print(f"bench: {tool} is missing; run bench/run (it installs it)", file=sys.stderr)
            return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    archive = build_archive(args.workdir / f"serve-{args.layer_mib}mib.tar", args.layer_mib, args.layer_mib)
    from regtui.oci import open_archive

    img = open_archive(str(archive)).images()[0]
    layer = img.layers[0]
    size = layer.descriptor.size
    load_before = os.getloadavg()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="regtui-serve-bench-", dir=args.workdir))
    servers: dict[str, Server] = {}
    experiment: Server | None = None
    starters = {"regtui": start_regtui, "distribution": start_distribution, "nginx": start_nginx}
    try:
        for name in args.only.split(","):
            if name == "distribution":
                srv = servers[name] = start_distribution(archive, work, servers.get("regtui"))
            else:
                srv = servers[name] = starters[name](archive, work)
            srv.manifest_digest = manifest_digest(srv)
            print(f"bench: {name} on {srv.base}, manifest {srv.manifest_digest}", file=sys.stderr)
        # One stage at a time across servers, so that a noisy minute hits all three alike.
        stages = [
            ("single stream", lambda s, u: bench_single(s, u, size, args.runs)),
            ("16 clients", lambda s, u: bench_concurrent(s, u, size, 16, args.heavy_runs)),
            ("64 clients", lambda s, u: bench_concurrent(s, u, size, 64, args.heavy_runs)),
            (
                "manifest by tag",
                lambda s, u: bench_wrk(s, "tag", f"/v2/{REPO}/manifests/{TAG}", args.runs, args.wrk_seconds),
            ),
            (
                "manifest by digest",
                lambda s, u: bench_wrk(
                    s, "digest", f"/v2/{REPO}/manifests/{s.manifest_digest}", args.runs, args.wrk_seconds
                ),
            ),
            ("skopeo pull", lambda s, u: bench_pull(s, work, args.heavy_runs)),
        ]
        keys = dict(zip(["single", "16", "64", "tag", "digest", "pull"], [name for name, _ in stages], strict=False))
        if args.stages:
            wanted = {keys[k.strip()] for k in args.stages.split(",")}
            stages = [(name, fn) for name, fn in stages if name in wanted]
        for stage, fn in stages:
            for srv in servers.values():
                print(f"bench: {stage}: {srv.name}", file=sys.stderr)
                fn(srv, srv.url(f"/v2/{REPO}/blobs/{layer.digest}"))
        if args.experiment_workers > 1 and "regtui" in servers:
            exp = start_regtui_workers(archive, work, args.experiment_workers)
            try:
                exp.manifest_digest = manifest_digest(exp)
                print(f"bench: experiment: {exp.name}", file=sys.stderr)
                bench_wrk(exp, "tag", f"/v2/{REPO}/manifests/{TAG}", args.runs, args.wrk_seconds)
                bench_wrk(exp, "digest", f"/v2/{REPO}/manifests/{exp.manifest_digest}", args.runs, args.wrk_seconds)
                experiment = exp
            finally:
                exp.stop()
    finally:
        for srv in servers.values():
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    load_after = os.getloadavg()
    print(table(servers))
    if experiment is not None:
        print(
            f"\nExperiment ({experiment.name}, no per-request log lines; `regtui serve` ran "
            f"{REGTUI_WORKERS} worker(s)):\n"
        )
        print(experiment_table(experiment, servers.get("distribution")))
    notes = {
        "machine": machine(),
        "layer_bytes": size,
        "elapsed_s": round(elapsed),
        "load_before": load_before,
        "load_after": load_after,
        "runs": {"quick": args.runs, "heavy": args.heavy_runs, "wrk_seconds": args.wrk_seconds},
        "regtui_workers": args.regtui_workers,
    }
    print(
        f"\n{notes['machine']}\nlayer {size / MiB:.0f} MiB; {elapsed:.0f}s; load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    if args.json:
        results = {k: s.results for k, s in servers.items()}
        if experiment is not None:
            results["experiment"] = {"name": experiment.name, **experiment.results}
        args.json.write_text(json.dumps({"notes": notes, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
