"""The event JSON codec, the watch feed's window and export, file sources, and `regtui watch` usage errors."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regtui.registry.eventjson import TEXT, Decoder, Encoder, dumps
from regtui.registry.events import (
    PullProgress,
    RequestFinished,
    RequestProgress,
    RequestStarted,
    ServerLog,
    ServerState,
)
from regtui.registry.logformat import LineLog
from regtui.watch.feed import Feed, SourceState, parse_when
from regtui.watch.sources import LinesSource, events_url, make_source
from tests.helpers.support import require_tool

T = 1_767_225_600.25
START = RequestStarted(
    7,
    T,
    "10.0.0.2:5555",
    "GET",
    "/v2/registry/blobs/sha256:ab",
    "registry",
    "sha256:ab",
    "blob",
    "containerd/1.6.20",
    ("application/octet-stream", "*/*"),
)
PROGRESS = RequestProgress(7, 1000, 4000)
FINISH = RequestFinished(7, T + 0.5, 200, 4000, 0.5, None, None)
PULL = PullProgress(
    "pull-3", "10.0.0.2", "containerd/1.6.20", "registry", "2.8.1", "sha256:cd", 6, 2, 9000, 1000, T - 1, T, False
)


def _decode_all(lines: list[str]) -> list:
    d = Decoder()
    return [e for line in lines for e in d.line(line)]


def test_live_objects_decode_to_the_same_events():
    enc = Encoder(live=True)
    state = ServerState("serving", "http://127.0.0.1:5000")
    log = ServerLog("warning", "something odd", T)
    lines = [dumps(o) for o in map(enc.encode, [state, START, PROGRESS, FINISH, PULL, log]) if o is not None]
    got = _decode_all(lines)
    assert got[0] == state
    started, progress, finished, pull, logged = got[1:]
    assert started == RequestStarted(
        started.id,
        T,
        *[
            getattr(START, f)
            for f in ("client", "method", "path", "repository", "reference", "kind", "user_agent", "accept")
        ],
    )
    assert progress == RequestProgress(started.id, 1000, 4000)
    assert finished == RequestFinished(started.id, pytest.approx(T + 0.5), 200, 4000, pytest.approx(0.5), None, None)
    assert (pull.client, pull.blobs_done, pull.bytes_total, pull.finished) == ("10.0.0.2", 2, 9000, False)
    assert pull.started == pytest.approx(T - 1) and pull.updated == pytest.approx(T)
    assert logged == log


def test_the_json_log_decodes_to_whole_requests_and_finished_pulls():
    lines: list[str] = []
    log = LineLog(lines.append, "json")
    for e in (START, PROGRESS, FINISH, PULL, PullProgress(**{**PULL.__dict__, "finished": True, "blobs_done": 6})):
        log(e)
    assert len(lines) == 2  # one request line, one finished pull line
    started, finished, pull = _decode_all(lines)
    assert isinstance(started, RequestStarted) and finished.id == started.id and finished.bytes_sent == 4000
    assert pull.finished and pull.blobs_done == 6 and pull.manifest_digest == "sha256:cd"


def test_a_restarted_server_in_one_log_keeps_pulls_apart():
    enc = Encoder()
    done = PullProgress(**{**PULL.__dict__, "finished": True})
    lines = [
        dumps(enc.encode(ServerState("starting"))),
        dumps(enc.encode(done)),
        dumps(enc.encode(ServerState("starting"))),
        dumps(enc.encode(done)),
    ]
    pulls = [e for e in _decode_all(lines) if isinstance(e, PullProgress)]
    assert len({p.key for p in pulls}) == 2


@pytest.mark.parametrize(
    "line",
    [
        "serving registry:2.8.1 from seed-image.tar",
        "{",
        "[1, 2]",
        '"just a string"',
        '{"no": "event"}',
        '{"event": "request"}',
        '{"event": "request", "time": "yesterday"}',
        '{"event": "weird", "time": 1}',
        '{"event": "pull", "time": "2026-01-01T00:00:00Z", "blobs_done": "3"}',
        '{"event": "log", "message": 5}',
        '{"event": "request", "time": 1, "duration_ms": 1e400, "status": 200, "bytes": 1}',
        '{"event": "request", "time": 1, "duration_ms": 1, "status": NaN, "bytes": 1}',
        '{"event": "request_start", "time": 1, "accept": [1]}',
        '{"event": "server", "state": ["x"]}',
    ],
)
def test_lines_that_are_not_events_become_log_lines(line):
    [event] = Decoder().line(line)
    assert event == ServerLog(TEXT, line, 0.0)


def test_prefixed_json_lines_are_read_and_blank_lines_ignored():
    obj = dumps(Encoder().encode(ServerState("serving", "http://x:1")))
    assert (
        _decode_all([f"2026-01-01T00:00:00.000000000Z {obj}", f"seed-1  | {obj}", "", "  \n"])
        == [ServerState("serving", "http://x:1")] * 2
    )


def test_terminal_escapes_from_elsewhere_are_escaped():
    """A log line or a JSON field can carry ESC sequences; the TUI must show them, not send them to the terminal."""
    [text] = Decoder().line("\x1b[2J\x1b]0;pwned\x07 cleared")
    assert "\x1b" not in text.message and text.message.startswith("\\x1b[2J")
    obj = {
        "event": "request",
        "time": 1,
        "client": "c",
        "method": "GET",
        "path": "/v2/\x1b[31m",
        "user_agent": "ua\x1b]0;x\x07",
        "status": 404,
        "bytes": 0,
        "duration_ms": 1,
        "error": "NAME_UNKNOWN",
        "detail": "repository '\x1b[1m' unknown",
        "accept": ["\x1b"],
    }
    started, finished = Decoder().line(json.dumps(obj))
    fields = [started.path, started.user_agent, finished.detail, *started.accept]
    assert all("\x1b" not in f and "\x07" not in f for f in fields), fields


def test_the_embedded_servers_paths_are_escaped_too():
    from regtui.tui.live import LiveState

    live = LiveState()
    live.apply(RequestStarted(1, T, "c:1", "GET", "/v2/\x1b[2J/manifests/x", None, None, "other", "ua"))
    assert live.rows[1].path == "/v2/\\x1b[2J/manifests/x"


def test_progress_of_a_request_started_before_we_joined_is_skipped():
    assert Decoder().line(dumps({"event": "request_progress", "id": 1, "bytes": 5, "total": 9})) == []


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.dictionaries(
            st.sampled_from(
                [
                    "event",
                    "time",
                    "id",
                    "status",
                    "bytes",
                    "duration_ms",
                    "accept",
                    "client",
                    "blobs_done",
                    "finished",
                    "count",
                    "started",
                    "state",
                    "level",
                    "message",
                ]
            ),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(),
                st.text(max_size=5),
                st.sampled_from(["request", "request_start", "request_progress", "pull", "server", "log", "dropped"]),
                st.lists(st.text(max_size=3), max_size=2),
            ),
        ),
    )
)
def test_the_decoder_never_raises(value):
    line = value if isinstance(value, str) else json.dumps(value)
    for e in Decoder().line(line):
        assert type(e).__name__ in (
            "RequestStarted",
            "RequestFinished",
            "RequestProgress",
            "PullProgress",
            "ServerState",
            "ServerLog",
        )


def test_feed_window_and_export():
    enc = Encoder()
    out = io.StringIO()
    got: list = []
    feed = Feed(got.append, since=T - 10, until=T + 10, export=out)
    early = RequestStarted(1, T - 100, "c:1", "GET", "/v2/", None, None, "base", "ua")
    for start in (early, START):
        enc.encode(start)
    feed.line(dumps(enc.encode(RequestFinished(1, T - 99, 200, 2, 0.01))))
    feed.line(dumps(enc.encode(FINISH)))
    feed.line("plain text\n")
    assert [type(e).__name__ for e in got] == ["RequestStarted", "RequestFinished", "ServerLog"]
    exported = [json.loads(l) for l in out.getvalue().splitlines()]
    assert [e["event"] for e in exported] == ["request", "log"]
    assert exported[1] == {"event": "log", "time": None, "level": "text", "message": "plain text"}
    # The export is itself a log the watch can read back.
    again: list = []
    back = Feed(again.append)
    for l in out.getvalue().splitlines():
        back.line(l)
    assert [type(e).__name__ for e in again] == ["RequestStarted", "RequestFinished", "ServerLog"]


def test_parse_when():
    assert parse_when("10m", now=1000.0) == 400.0
    assert parse_when("2026-01-01T00:00:00Z") == 1_767_225_600.0
    with pytest.raises(ValueError, match="duration ago"):
        parse_when("yesterday")


def test_events_url():
    assert events_url("http://h:5000/") == "http://h:5000/_regtui/events"
    assert events_url("127.0.0.1:5000") == "http://127.0.0.1:5000/_regtui/events"
    assert events_url("seed.example:443") == "https://seed.example:443/_regtui/events"
    assert events_url("https://h/_regtui/events") == "https://h/_regtui/events"


def _collect(source) -> tuple[list, threading.Event]:
    got: list = []
    ended = threading.Event()

    def publish(e):
        got.append(e)
        if isinstance(e, SourceState) and e.state in ("ended", "failed", "following"):
            ended.set()

    source.start(publish)
    return got, ended


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_a_file_is_replayed_and_followed(tmp_path):
    enc = Encoder()
    path = tmp_path / "serve.log"
    enc.encode(START)
    path.write_text(dumps(enc.encode(FINISH)) + "\n" + "not json\n")
    got, done = _collect(LinesSource(path=str(path)))
    assert done.wait(10)
    assert [type(e).__name__ for e in got] == [
        "SourceState",
        "RequestStarted",
        "RequestFinished",
        "ServerLog",
        "SourceState",
    ]
    assert got[-1].state == "ended" and got[-1].detail == "2 lines"

    human = tmp_path / "human.log"
    human.write_text("".join(f'12:00:0{i % 10}.000 127.0.0.1:1 GET /v2/ 200 2 B 1.0 ms "curl"\n' for i in range(25)))
    got, done = _collect(LinesSource(path=str(human)))
    assert done.wait(10)
    hints = [e.detail for e in got if isinstance(e, SourceState) and e.state == "reading" and e.detail]
    assert hints == ["20 lines, none of them JSON: run the server with --log-format json"]
    assert got[-1].detail == "25 lines, none of them JSON: run the server with --log-format json"

    follow = LinesSource(path=str(path), follow=True)
    got, following = _collect(follow)
    try:
        assert following.wait(10)
        with open(path, "a") as f:
            f.write('{"event": "server", "state": "stop')  # half a line: not read until it is whole
            f.flush()
            time.sleep(0.6)
            assert not any(isinstance(e, ServerState) for e in got)
            f.write('ping"}\n')
        _wait(lambda: ServerState("stopping") in got)
        path.write_text(dumps(enc.encode(ServerState("starting"))) + "\n")  # truncated: read from the start
        _wait(lambda: ServerState("starting") in got)
    finally:
        follow.stop()


def test_make_source_errors(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        make_source(str(tmp_path))
    with pytest.raises(ValueError, match="--follow tails a FILE"):
        make_source("http://127.0.0.1:5000", follow=True)
    with pytest.raises(ValueError, match="not a registry URL"):
        make_source("nosuchfile")
    with pytest.raises(ValueError, match="only http"):
        make_source("ftp://x")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchfile"], "nosuchfile: no such file, and not a registry URL"),
        (["http://127.0.0.1:1", "--since", "soon"], "--since: 'soon' is neither a duration"),
        (["http://127.0.0.1:1", "--ca", "x.pem", "--insecure"], "--insecure and --ca exclude each other"),
        (["-", "--username", "u", "--password-stdin"], "--password-stdin and `watch -` both want"),
        (["http://127.0.0.1:1", "--username", "u"], "--username needs --password-stdin"),
        (["http://127.0.0.1:1", "--ca", "/nonexistent.pem"], "--ca /nonexistent.pem: no such file"),
        (["http://127.0.0.1:1", "--ca", "/etc/hostname"], "cannot load CA certificates from /etc/hostname"),
    ],
)
def test_watch_usage_errors_are_one_line(args, message):
    r = subprocess.run(
        [sys.executable, "-m", "regtui", "watch", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"regtui: error: {message}") and r.stderr.count("\n") == 1, r.stderr


def test_watch_dash_reads_the_log_from_a_pipe_and_keys_from_the_terminal(tmp_path):
    """The real command in a terminal (`script` gives it one): `cat LOG | regtui watch - --export OUT`, then q."""
    script = require_tool("script")
    enc = Encoder()
    enc.encode(START)
    log = tmp_path / "serve.log"
    log.write_text(
        "serving registry:2.8.1 from seed-image.tar\n"
        + dumps(enc.encode(ServerState("serving")))
        + "\n"
        + dumps(enc.encode(FINISH))
        + "\n"
    )
    out = tmp_path / "export.jsonl"
    command = f"cat {shlex.quote(str(log))} | {shlex.quote(sys.executable)} -m regtui watch - --export {out}"
    proc = subprocess.Popen(
        [script, "-qfec", command, "/dev/null"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TERM": "xterm"},
    )
    try:
        _wait(lambda: out.exists() and len(out.read_text().splitlines()) == 3, timeout=30)
        proc.stdin.write(b"q")
        proc.stdin.flush()
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [json.loads(l)["event"] for l in out.read_text().splitlines()] == ["log", "server", "request"]
