"""Headless `serve` output: one line per finished request (and per server state change or finished pull)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from regtui.registry.events import (
    Event,
    PullProgress,
    RequestFinished,
    RequestStarted,
    ServerLog,
    ServerState,
)


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# Control characters (C0, DEL, C1, Unicode line/paragraph separators) arrive percent-decoded in paths and
# in header values; raw, a `%0a` in a path would split one logged request into two lines, or forge another.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7f, 0xa0)]}
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def safe(text: object) -> str:
    """`text` on one line, with control characters escaped as \\xNN (JSON output escapes them itself)."""
    return str(text).translate(_ESCAPES)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class LineLog:
    """A bus subscriber that turns events into lines (human text or JSON) and hands them to `write`."""

    def __init__(self, write: Callable[[str], None], fmt: str = "human"):
        self.write = write
        self.json = fmt == "json"
        self.started: dict[int, RequestStarted] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RequestStarted):
            self.started[event.id] = event
        elif isinstance(event, RequestFinished):
            start = self.started.pop(event.id, None)
            if start is not None:
                self.write(self.request(start, event))
        elif isinstance(event, PullProgress) and event.finished:
            self.write(self.pull(event))
        elif isinstance(event, ServerState):
            self.write(self.state(event))
        elif isinstance(event, ServerLog) and event.level not in ("info", "debug"):
            self.write(self.log(event))

    def request(self, s: RequestStarted, f: RequestFinished) -> str:
        if self.json:
            return json.dumps({
                "event": "request", "time": _iso(s.time), "client": s.client, "method": s.method, "path": s.path,
                "kind": s.kind, "repository": s.repository, "reference": s.reference, "status": f.status,
                "bytes": f.bytes_sent, "duration_ms": round(f.duration * 1000, 3), "user_agent": s.user_agent,
                "accept": list(s.accept), "error": f.error_code, "detail": f.detail,
            })
        line = (f"{_clock(s.time)} {safe(s.client)} {safe(s.method)} {safe(s.path)} {f.status} "
                f"{human_size(f.bytes_sent)} {f.duration * 1000:.1f} ms \"{safe(s.user_agent)}\"")
        if f.error_code:
            line += f" {safe(f.error_code)}"
        if f.detail:
            line += f": {safe(f.detail)}"
        return line

    def pull(self, p: PullProgress) -> str:
        if self.json:
            return json.dumps({
                "event": "pull", "time": _iso(p.updated), "client": p.client, "repository": p.repository,
                "reference": p.reference, "manifest": p.manifest_digest, "blobs_done": p.blobs_done,
                "blobs_total": p.blobs_total, "bytes_done": p.bytes_done, "bytes_total": p.bytes_total,
                "seconds": round(p.updated - p.started, 3), "user_agent": p.user_agent,
            })
        complete = "complete" if p.blobs_total and p.blobs_done == p.blobs_total else "ended"
        return (f"{_clock(p.updated)} pull {complete}: {safe(p.client)} {safe(p.repository)}:{safe(p.reference)} "
                f"{p.blobs_done}/{p.blobs_total} blobs, {human_size(p.bytes_done)} of "
                f"{human_size(p.bytes_total)} in {p.updated - p.started:.2f} s")

    def state(self, e: ServerState) -> str:
        if self.json:
            return json.dumps({"event": "server", "time": _iso(time.time()), "state": e.state, "url": e.url,
                               "error": e.error})
        text = f"{_clock(time.time())} server {e.state}"
        if e.url:
            text += f" {safe(e.url)}"
        if e.error:
            text += f": {safe(e.error)}"
        return text

    def log(self, e: ServerLog) -> str:
        if self.json:
            return json.dumps({"event": "log", "time": _iso(e.time or time.time()), "level": e.level,
                               "message": e.message})
        return f"{_clock(e.time or time.time())} {safe(e.level)}: {safe(e.message)}"
