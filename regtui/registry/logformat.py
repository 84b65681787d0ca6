"""Headless `serve` output: one line per finished request (and per server state change or finished pull)."""

from __future__ import annotations

import time
from collections.abc import Callable

from regtui.registry.eventjson import dumps, log_object, pull_object, request_object, safe, state_object
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


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


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
            return dumps(request_object(s, f))
        line = (
            f"{_clock(s.time)} {safe(s.client)} {safe(s.method)} {safe(s.path)} {f.status} "
            f'{human_size(f.bytes_sent)} {f.duration * 1000:.1f} ms "{safe(s.user_agent)}"'
        )
        if f.error_code:
            line += f" {safe(f.error_code)}"
        if f.detail:
            line += f": {safe(f.detail)}"
        return line

    def pull(self, p: PullProgress) -> str:
        if self.json:
            return dumps(pull_object(p))
        complete = "complete" if p.state == "done" else p.state  # manifest only, incomplete, failed
        line = (
            f"{_clock(p.updated)} pull {complete}: {safe(p.client)} {safe(p.repository)}:{safe(p.reference)} "
            f"{p.blobs_done}/{p.blobs_total} blobs, {human_size(p.bytes_done)} of "
            f"{human_size(p.bytes_total)} in {p.updated - p.started:.2f} s"
        )
        return line + (f": {safe(p.error)}" if p.error else "")

    def state(self, e: ServerState) -> str:
        if self.json:
            return dumps(state_object(e))
        text = f"{_clock(time.time())} server {e.state}"
        if e.url:
            text += f" {safe(e.url)}"
        if e.error:
            text += f": {safe(e.error)}"
        return text

    def log(self, e: ServerLog) -> str:
        if self.json:
            return dumps(log_object(e))
        return f"{_clock(e.time or time.time())} {safe(e.level)}: {safe(e.message)}"
