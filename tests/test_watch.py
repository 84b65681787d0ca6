"""`regtui watch`: a real `regtui serve --events` (or its JSON log) watched by the real app, with real pulls
from skopeo and containerd; reconnects, auth, the endpoint being off, and a stalled watcher."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from regtui.oci import open_archive
from regtui.remote import Credentials
from regtui.tui.app import RegtuiApp
from regtui.tui.widgets.common import VimTable
from regtui.tui.widgets.requests import COLUMNS
from regtui.watch.sources import LinesSource, SseSource, make_source
from tests.helpers.containerd import running_containerd
from tests.helpers.distribution import write_htpasswd
from tests.helpers.support import free_port, require_tool
from tests.helpers.tui_support import table_rows, text_of, until
from tests.test_registry_command import Serve

SIZE = (160, 45)
REF = "registry:2.8.1"


@pytest.fixture
def serve_proc():
    procs: list[Serve] = []

    def start(*args: str) -> Serve:
        p = Serve(*args)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


def _image_bytes(seed_tar) -> tuple[int, int]:
    image = open_archive(str(seed_tar)).images()[0]
    blobs = [image.config.descriptor.size, *(l.descriptor.size for l in image.layers)]
    return len(blobs), sum(blobs)


async def _run(*cmd: str, timeout: float = 120) -> None:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {err.decode()}"


def _logged_requests(serve: Serve) -> list[tuple[str, str, int, int]]:
    """The (method, path, status, bytes) of every request serve has logged as JSON so far."""
    while not serve.lines.empty():
        serve.seen.append(serve.lines.get())
    found = [json.loads(l) for l in serve.seen if l.startswith('{"event": "request"')]
    return [(e["method"], e["path"], e["status"], e["bytes"]) for e in found]


def _shown_requests(app) -> list[tuple[str, str, int | None, int]]:
    return [(r.method, r.path, r.status, r.bytes_sent) for r in app.live.rows.values()]


def _done_pulls(app) -> list:
    return [p for p in app.live.pulls.values() if p.finished]


async def _check_pulls(pilot, app, seed_tar, clients: list[str]) -> None:
    n_blobs, n_bytes = _image_bytes(seed_tar)
    await until(pilot, lambda: len(_done_pulls(app)) == len(clients), what="finished pulls")
    for pull, client in zip(sorted(_done_pulls(app), key=lambda p: p.started), clients, strict=True):
        assert pull.user_agent.startswith(client)
        assert (pull.blobs_done, pull.blobs_total) == (n_blobs, n_blobs)
        assert pull.bytes_done == pull.bytes_total == n_bytes
        assert f"{pull.repository}:{pull.reference}" == REF
    await pilot.press("7")
    rows = table_rows(app.query_one("#pulls-table", VimTable))
    assert len(rows) == len(clients) and all(r[6] == "done" and "100%" in r[4] for r in rows)


async def test_watch_url_shows_every_request_and_skopeo_and_containerd_pulls(seed_tar, serve_proc, tmp_path_factory):
    skopeo, ctr = require_tool("skopeo"), require_tool("ctr")
    s = serve_proc(str(seed_tar), "--port", "0", "--events", "--log-format", "json")
    url = s.url()
    host = url.split("://")[1]
    app = RegtuiApp([], source=make_source(url))
    tmp = tmp_path_factory.mktemp("w")
    with running_containerd(tmp_path_factory.mktemp("ctrd")) as sock:
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: app.source_state is not None and app.source_state.state == "connected",
                what="the stream to connect",
            )
            await _run(
                skopeo, "copy", "-q", "--src-tls-verify=false", f"docker://{host}/{REF}", f"oci:{tmp / 'pulled'}:{REF}"
            )
            await _run(
                ctr,
                "--address",
                sock,
                "-n",
                "watch",
                "image",
                "pull",
                "--plain-http",
                "--snapshotter",
                "native",
                f"{host}/{REF}",
            )
            await _check_pulls(pilot, app, seed_tar, ["skopeo", "containerd"])

            # The log has a line when a request ends, the TUI a row when it starts: the same, in another order.
            await until(
                pilot,
                lambda: sorted(_shown_requests(app)) == sorted(_logged_requests(s)),
                what=f"every logged request, as logged: {_shown_requests(app)} {_logged_requests(s)}",
            )
            logged = _logged_requests(s)
            assert len(logged) >= 2 * 7  # both clients: manifests and every blob
            assert app.live.requests_total == len(logged)  # the watch itself is not a request
            await pilot.press("6")
            table = app.query_one("#requests-table", VimTable)
            await until(pilot, lambda: table.row_count == len(logged), what="every request in the table")
            method = [key for _, key in COLUMNS].index("method")
            assert {r[method] for r in table_rows(table)} == {"GET", "HEAD"}
            status = text_of(app.query_one("#status"))
            assert f"watching {url}" in status and "connected" in status and f"{len(logged)} requests" in status
            # Archive views are hidden; keys for what needs an archive do nothing.
            assert not app.query_one("#images").display
            await pilot.press("s", "1", "4")
            assert app.live.server.state == "serving"
            assert app.query_one("#tabs").active == "requests"
    assert s.stop() == 0


async def test_watch_a_json_log_piped_in(seed_tar, serve_proc, tmp_path, tmp_path_factory):
    """`regtui serve --log-format json | regtui watch -`: the serve process's stdout is the watch's stdin."""
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "regtui", "serve", str(seed_tar), "--port", str(port), "--log-format", "json"],
        stdout=subprocess.PIPE,
    )
    export = tmp_path / "export.jsonl"
    try:
        with open(export, "w") as out:
            app = RegtuiApp([], source=LinesSource(stream=serve.stdout, export=out))
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.live.server.state == "serving", what="the log's serving line")
                await _run(
                    require_tool("skopeo"),
                    "copy",
                    "-q",
                    "--src-tls-verify=false",
                    f"docker://127.0.0.1:{port}/{REF}",
                    f"oci:{tmp_path / 'pulled'}:{REF}",
                )
                with running_containerd(tmp_path_factory.mktemp("ctrd")) as sock:
                    await _run(
                        require_tool("ctr"),
                        "--address",
                        sock,
                        "-n",
                        "pipe",
                        "image",
                        "pull",
                        "--plain-http",
                        "--snapshotter",
                        "native",
                        f"127.0.0.1:{port}/{REF}",
                    )
                await _check_pulls(pilot, app, seed_tar, ["skopeo", "containerd"])
                os.kill(serve.pid, signal.SIGTERM)
                await until(pilot, lambda: app.source_state.state == "ended", what="the end of the piped log")
                # The lines before the JSON ones ("serving registry:2.8.1 from ...") are log lines, not errors.
                # The log wraps at the view's width, so a phrase may span two lines: compare whitespace-free.
                log = " ".join(" ".join(str(line.text) for line in app.query_one("#server-log").lines).split())
                assert "text" in log and f"serving {REF} from" in log
                assert app.live.server.state == "stopped"
                assert all(r.status == 200 for r in app.live.rows.values())
                shown = _shown_requests(app)
        serve.wait(20)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    exported = [json.loads(l) for l in export.read_text().splitlines()]
    assert sorted(
        (e["method"], e["path"], e["status"], e["bytes"]) for e in exported if e["event"] == "request"
    ) == sorted(shown)
    # serve's start-up lines are JSON objects too (event "serving"): exported as they came, message and all.
    assert exported[0]["event"] == "serving" and f"serving {REF}" in exported[0]["message"]


async def test_watch_reconnects_when_the_server_restarts(seed_tar, serve_proc):
    port = free_port()
    args = (str(seed_tar), "--port", str(port), "--events")
    s = serve_proc(*args)
    url = s.url()
    app = RegtuiApp([], source=SseSource(url, backoff=(0.2, 0.4)))
    async with app.run_test(size=SIZE) as pilot:

        def state() -> str:
            return app.source_state.state if app.source_state else ""

        await until(pilot, lambda: state() == "connected", what="connected")
        httpx.get(f"{url}/v2/")
        await until(pilot, lambda: app.live.requests_total == 1, what="the first request")
        t0 = time.monotonic()
        assert s.stop() == 0
        assert time.monotonic() - t0 < 5  # the open stream does not hold the graceful stop (--grace 10)
        await until(
            pilot,
            lambda: state() == "reconnecting" and "refused" in (app.source_state.detail or ""),
            what="reconnecting",
        )
        await until(pilot, lambda: "reconnecting" in text_of(app.query_one("#status")), what="the status line")
        assert app.live.server.state == "stopping"  # the last word of the stream, before it ended
        s2 = serve_proc(*args)
        assert s2.url() == url
        await until(pilot, lambda: state() == "connected", what="connected again")
        httpx.get(f"{url}/v2/registry/tags/list")
        await until(pilot, lambda: app.live.requests_total == 2, what="the request after the restart")
        await pilot.pause(0.5)
        assert [(r.path, r.status) for r in app.live.rows.values()] == [
            ("/v2/", 200),
            ("/v2/registry/tags/list", 200),
        ]  # nothing twice from the replay
        log = "\n".join(str(line.text) for line in app.query_one("#server-log").lines)
        assert "reconnecting" in log and "connection refused" in log
        assert s2.stop() == 0


async def test_events_need_the_registry_credentials(seed_tar, serve_proc, tmp_path):
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "s3cret"})
    s = serve_proc(str(seed_tar), "--port", "0", "--events", "--htpasswd", str(htpasswd))
    url = s.url()
    r = httpx.get(f"{url}/_regtui/events")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic ")
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert httpx.get(f"{url}/_regtui/events", auth=("alice", "wrong")).status_code == 401
    with httpx.stream("GET", f"{url}/_regtui/events", auth=("alice", "s3cret")) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        first = next(l for l in r.iter_lines() if l.startswith("data: "))
        assert json.loads(first[6:])["event"] == "server"

    nobody = SseSource(url, lookup=lambda host: None)
    wrong = SseSource(url, credentials=Credentials("alice", "nope"))
    alice = SseSource(url, credentials=Credentials("alice", "s3cret"))
    for source, state, says in (
        (nobody, "failed", "requires a login"),
        (wrong, "failed", "authentication failed as 'alice'"),
        (alice, "connected", ""),
    ):
        app = RegtuiApp([], source=source)
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda a=app: a.source_state and a.source_state.state in ("failed", "connected"),
                what="an answer",
            )
            assert app.source_state.state == state and says in (app.source_state.detail or "")
            if state == "failed":
                await until(pilot, lambda a=app, w=says: w in text_of(a.query_one("#status")), what="the status")


async def test_watch_over_tls_as_push_and_diff(seed_tar, serve_proc):
    s = serve_proc(str(seed_tar), "--port", "0", "--events", "--tls-self-signed")
    cert = s.wait_line(r"TLS: self-signed certificate").rsplit(": ", 1)[1]
    url = s.url()
    assert url.startswith("https://")
    for kwargs, state, says in (
        ({}, "failed", "TLS certificate verification failed"),
        ({"ca": cert}, "connected", ""),
        ({"insecure": True}, "connected", ""),
    ):
        app = RegtuiApp([], source=make_source(url, **kwargs))
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda a=app: a.source_state and a.source_state.state in ("failed", "connected"),
                what="an answer",
            )
            assert app.source_state.state == state and says in (app.source_state.detail or "")
            if state == "connected":
                await until(pilot, lambda a=app: a.live.server.state == "serving", what="the replayed state")
                assert app.live.server.url == url


def test_events_are_off_by_default_and_never_a_request(seed_tar, serve_proc):
    s = serve_proc(str(seed_tar), "--port", "0", "--log-format", "json")
    url = s.url()
    r = httpx.get(f"{url}/_regtui/events")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
    assert s.stop() == 0

    s = serve_proc(str(seed_tar), "--port", "0", "--log-format", "json", "--events")
    url = s.url()
    with httpx.stream("GET", f"{url}/_regtui/events") as r:
        assert r.status_code == 200
        assert httpx.get(f"{url}/v2/_catalog").json() == {"repositories": ["registry"]}
        lines = r.iter_lines()
        seen = []
        for line in lines:
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1]["event"] == "request":
                    break
    assert [e["path"] for e in seen if e["event"] in ("request", "request_start")] == ["/v2/_catalog"] * 2
    assert httpx.post(f"{url}/_regtui/events").status_code == 405
    assert s.stop() == 0
    requests = [json.loads(l) for l in s.seen if l.startswith('{"event": "request"')]
    assert [e["path"] for e in requests] == ["/v2/_catalog"]  # watching is not a request


def test_events_refuse_several_workers(seed_tar):
    r = subprocess.run(
        [sys.executable, "-m", "regtui", "serve", str(seed_tar), "--events", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and r.stderr.startswith("regtui: error: --events needs --workers 1")
    assert "Traceback" not in r.stderr


def test_a_stalled_watcher_keeps_a_bounded_queue_and_learns_what_it_missed(seed_tar):
    from regtui.registry.watchfeed import install
    from tests.helpers.registry_harness import RunningRegistry

    reg = RunningRegistry([seed_tar])
    feed = install(reg.app, replay=10, queue=64 << 10)
    reg.start()
    try:
        raw = socket.socket()  # a watcher that reads nothing
        raw.connect(("127.0.0.1", reg.port))
        raw.sendall(b"GET /_regtui/events?replay=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.time() + 10
        while not feed.watchers and time.time() < deadline:
            time.sleep(0.02)
        [watcher] = feed.watchers
        longest = 0
        name = "a" * 4000  # long paths: big event objects fill the socket buffers sooner
        t0 = time.perf_counter()
        sent = 0
        with httpx.Client(base_url=reg.url) as c:
            while not watcher.dropped and sent < 20000:
                for _ in range(50):
                    assert c.get(f"/v2/{name}/manifests/{sent}").status_code == 400  # NAME_INVALID
                    sent += 1
                longest = max(longest, watcher.size)
        assert watcher.dropped, f"{sent} requests and nothing dropped"
        assert 0 < longest <= (64 << 10) + 200  # the queue, and at most one "dropped" marker
        assert time.perf_counter() - t0 < 60
        raw.setblocking(False)
        got = b""
        deadline = time.time() + 20
        while b'"event": "dropped"' not in got and time.time() < deadline:
            try:
                chunk = raw.recv(1 << 16)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            assert chunk, "the stream ended"
            got += chunk
        marker = next(l for l in got.split(b"\n") if b'"event": "dropped"' in l)
        assert json.loads(marker[6:])["count"] > 0
        raw.close()
    finally:
        reg.stop()


def _sse(url: str, headers: dict | None = None, *, until_path: str) -> list[tuple[str, dict]]:
    """(id, object) of the messages of one connection, read up to the finished request for `until_path`."""
    got = []
    with httpx.stream("GET", url, headers=headers or {}, timeout=20) as r:
        event_id = None
        for line in r.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                obj = json.loads(line[6:])
                got.append((event_id, obj))
                if obj["event"] == "request" and obj["path"] == until_path:
                    break
    return got


def test_a_late_joiner_gets_a_replay_and_a_reconnect_only_what_it_missed(seed_tar):
    from regtui.registry.watchfeed import install
    from tests.helpers.registry_harness import RunningRegistry

    reg = RunningRegistry([seed_tar])
    install(reg.app, replay=4, keepalive=0.2)
    reg.start()
    try:
        events = f"{reg.url}/_regtui/events"
        with httpx.Client(base_url=reg.url) as c:
            for path in ("/v2/", "/v2/_catalog", "/v2/registry/tags/list"):
                c.get(path)
            first = _sse(events, until_path="/v2/registry/tags/list")
            # The last 4 replayable objects: two requests, each a start and an end.
            assert [(o["event"], o["path"]) for _, o in first] == [
                ("request_start", "/v2/_catalog"),
                ("request", "/v2/_catalog"),
                ("request_start", "/v2/registry/tags/list"),
                ("request", "/v2/registry/tags/list"),
            ]
            c.get("/v2/registry/manifests/nope")
            again = _sse(events, {"Last-Event-ID": first[-1][0]}, until_path="/v2/registry/manifests/nope")
            # Fewer missed than the replay size (3 < 4): all of them, the failed pull of the 404 included.
            assert [(o["event"], o.get("path") or o.get("state")) for _, o in again] == [
                ("request_start", "/v2/registry/manifests/nope"),
                ("pull", "failed"),
                ("request", "/v2/registry/manifests/nope"),
            ]
            assert again[-1][1]["error"] == "MANIFEST_UNKNOWN"
            fewer = _sse(f"{events}?replay=1", until_path="/v2/registry/manifests/nope")
            assert len(fewer) == 1
    finally:
        reg.stop()

    # A quiet stream still says it is alive (proxies and the watch's read timeout count on it).
    reg = RunningRegistry([seed_tar])
    install(reg.app, keepalive=0.2)
    reg.start()
    try:
        with httpx.stream("GET", f"{reg.url}/_regtui/events?replay=0", timeout=5) as r:
            assert next(l for l in r.iter_lines() if l.startswith(":")) == ": keepalive"
    finally:
        reg.stop()


async def test_the_watched_source_state_stays_off_the_registry_bus(tmp_path):
    """The bus carries registry events only (its subscribers, such as the JSON log encoder, know no other kind);
    how the watched stream goes reaches the app directly. A JSON log replayed, no server needed."""
    from regtui.registry.eventjson import Encoder, dumps
    from regtui.registry.events import EventBus, RequestFinished, RequestStarted
    from regtui.watch.feed import SourceState

    recorder, enc, lines = EventBus(), Encoder(live=True), []
    recorder.subscribe(lambda e: lines.append(dumps(o)) if (o := enc.encode(e)) is not None else None)
    for i in (1, 2):
        recorder.publish(
            RequestStarted(
                i, 1000.0 + i, "127.0.0.1:1", "GET", f"/v2/r/manifests/t{i}", "r", f"t{i}", "manifest", "skopeo/1.0"
            )
        )
        recorder.publish(RequestFinished(i, 1000.1 + i, 404, 0, 0.1, "MANIFEST_UNKNOWN"))
    (tmp_path / "serve.log").write_text("\n".join(lines) + "\n")
    bus, carried = EventBus(), []
    bus.subscribe(carried.append)
    app = RegtuiApp([], bus=bus, source=LinesSource(path=str(tmp_path / "serve.log")))
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot, lambda: app.source_state is not None and app.source_state.state == "ended", what="the log replayed"
        )
        await until(pilot, lambda: len(app.live.rows) == 2, what="both requests shown")
    assert [type(e).__name__ for e in carried] == ["RequestStarted", "RequestFinished"] * 2
    assert not any(isinstance(e, SourceState) for e in carried)
