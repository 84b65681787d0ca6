"""`regtui serve` as a user runs it: a subprocess, one log line per request, SIGTERM, clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.helpers.registry_harness import build_layout

URL = re.compile(r"(https?://127\.0\.0\.1:\d+)")


class Serve:
    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "regtui", "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 20) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                assert self.proc.poll() is None, f"serve exited: {self.proc.stderr.read()}"
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        pytest.fail(f"no line matching {pattern!r}; saw {self.seen}")

    def url(self) -> str:
        return URL.search(self.wait_line(r"serving.*https?://")).group(1)

    def stop(self, timeout: float = 20) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        code = self.proc.wait(timeout)
        time.sleep(0.1)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def serve_proc():
    procs = []

    def start(*args):
        p = Serve(*args)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


def test_json_lines_and_sigterm(seed_tar, serve_proc):
    s = serve_proc(str(seed_tar), "--port", "0", "--log-format", "json")
    url = s.url()
    with httpx.Client(base_url=url, headers={"User-Agent": "cmd-test/1"}) as c:
        assert c.get("/v2/").status_code == 200
        assert c.get("/v2/registry/manifests/2.8.1").status_code == 200
        assert c.get("/v2/registry/manifests/nope").status_code == 404
    s.wait_line(r"MANIFEST_UNKNOWN")
    assert s.stop() == 0
    events = [json.loads(line) for line in s.seen if line.startswith("{")]
    requests = [e for e in events if e["event"] == "request"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("GET", "/v2/", 200),
        ("GET", "/v2/registry/manifests/2.8.1", 200),
        ("GET", "/v2/registry/manifests/nope", 404),
    ]
    assert requests[1]["repository"] == "registry" and requests[1]["reference"] == "2.8.1"
    assert requests[1]["bytes"] > 0 and requests[1]["user_agent"] == "cmd-test/1"
    assert requests[2]["error"] == "MANIFEST_UNKNOWN"
    states = [e["state"] for e in events if e["event"] == "server"]
    assert states == ["starting", "serving", "stopping", "stopped"]


def test_human_lines(seed_tar, serve_proc):
    s = serve_proc(str(seed_tar), "--port", "0", "--name", "mirror/registry")
    url = s.url()
    httpx.get(f"{url}/v2/mirror/registry/tags/list")
    line = s.wait_line(r"GET /v2/mirror/registry/tags/list")
    assert re.search(r"127\.0\.0\.1:\d+ GET /v2/mirror/registry/tags/list 200 \d+ B [\d.]+ ms \"python-httpx", line)
    assert s.stop() == 0
    assert any("serving registry:2.8.1" in l for l in s.seen)


def test_sigterm_lets_a_download_finish(tmp_path, serve_proc):
    layer = os.urandom(32 * 1024 * 1024)
    d = build_layout(tmp_path / "layout", ["big:1"], [layer])
    s = serve_proc(str(tmp_path / "layout"), "--port", "0", "--grace", "20")
    url = s.url()
    got = hashlib.sha256()
    n = 0
    with httpx.stream("GET", f"{url}/v2/big/blobs/{d['layers'][0]}", timeout=30) as r:
        chunks = r.iter_bytes(1 << 20)
        first = next(chunks)
        got.update(first)
        n += len(first)
        os.kill(s.proc.pid, signal.SIGTERM)
        s.wait_line(r"server stopping")
        for chunk in chunks:
            got.update(chunk)
            n += len(chunk)
            time.sleep(0.002)
    assert n == len(layer) and "sha256:" + got.hexdigest() == d["layers"][0]
    assert s.proc.wait(20) == 0
    s.wait_line(r"server stopped")


def test_busy_port(seed_tar):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "regtui", "serve", str(seed_tar), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["/nonexistent.tar"], "no such file"),
        (["{seed}", "--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
        (["{seed}", "--htpasswd", "/nonexistent"], "cannot read the htpasswd file"),
        (["{seed}", "--name", "Bad Name"], "not a valid repository name"),
        (["{seed}", "--host", "256.1.1.1"], "cannot resolve host"),
    ],
)
def test_bad_input_is_one_clear_line(seed_tar, args, message):
    args = [a.format(seed=seed_tar) for a in args]
    r = subprocess.run(
        [sys.executable, "-m", "regtui", "serve", *args, "--port", "0"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_tls_self_signed(seed_tar, serve_proc):
    s = serve_proc(str(seed_tar), "--port", "0", "--tls-self-signed")
    cert_line = s.wait_line(r"self-signed certificate")
    certfile = cert_line.rsplit(": ", 1)[1]
    fingerprint = s.wait_line(r"SHA-256 fingerprint").rsplit(" ", 1)[1]
    url = s.url()
    assert url.startswith("https://")
    port = int(url.rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=certfile)
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
        der = t.getpeercert(binary_form=True)
    assert hashlib.sha256(der).hexdigest().upper() == fingerprint.replace(":", "")
    with httpx.Client(verify=ctx) as c:
        assert c.get(f"{url}/v2/").status_code == 200
    assert s.stop() == 0
    assert not os.path.exists(certfile), "the generated key and certificate are removed on exit"
