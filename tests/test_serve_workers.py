"""`regtui serve --workers N`: N processes on one socket, whole log lines, one SIGTERM stops them all."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from regtui.oci import open_archive
from tests.helpers.support import free_port

LINE = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3} (127\.0\.0\.1:\d+ (GET|HEAD) \S+ \d{3} .* ms \".*\"|pull \w+: .*|"
    r"server \w+.*)$"
)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_workers_share_the_socket_and_stop_together(seed_tar):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "regtui", "serve", str(seed_tar), "--port", str(port), "--workers", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v2/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        image = open_archive(str(seed_tar)).images()[0]
        layer = image.layers[0]
        repo = image.repository
        requests = 0
        for _ in range(30):  # a new connection each: the kernel hands them to whichever process accepts
            with httpx.Client(timeout=10) as c:
                r = c.get(
                    f"{url}/v2/{repo}/manifests/{image.manifest.digest}", headers={"Accept": image.manifest.media_type}
                )
                assert r.status_code == 200 and r.content == image.manifest.data
                b = c.get(f"{url}/v2/{repo}/blobs/{layer.digest}")
                assert "sha256:" + hashlib.sha256(b.content).hexdigest() == layer.digest
                requests += 2
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert not [p for p in workers if Path(f"/proc/{p}").exists()], "a worker outlived the server"
    lines = [line for line in out.splitlines() if not line.startswith("serving ")]
    bad = [line for line in lines if not LINE.match(line)]
    assert not bad, bad  # no line cut or mixed with another process's
    served = [line for line in lines if re.search(r" (GET|HEAD) /v2/\S+/(manifests|blobs)/", line)]
    assert len(served) == requests
    assert sum(1 for line in lines if line.split(" ", 1)[1].startswith("server serving")) == 1
