"""The registry's events as JSON objects: one schema for `serve --log-format json`, the `--events` SSE stream and
`regtui watch --export`.

Objects (every one has "event"; times are ISO 8601 UTC with milliseconds, "…Z"):
- "request": a finished request, what the log prints: id, time (its start), client, method, path, kind,
  repository, reference, status, bytes, duration_ms, user_agent, accept, error, detail.
- "request_start" (id, time, client, method, path, kind, repository, reference, user_agent, accept) and
  "request_progress" (id, bytes, total): live only (the SSE stream), so a watcher sees requests in flight.
- "pull": client, repository, reference, manifest, blobs_done/total, bytes_done/total, seconds, user_agent, key,
  started, finished; the log prints finished pulls, the stream every throttled update.
- "server": state, url, error. "log": level, message. "dropped": count (a watcher fell behind, SSE only).

`Encoder` turns bus events into objects (a finished request needs its start: it is stateful, like the log).
`Decoder` turns lines or objects back into bus events, defensively: a line that is not JSON, an object of an
unknown kind or with fields of the wrong type becomes a `ServerLog` of level "text" carrying the line; it never
raises. Ids in decoded events are the decoder's own (a stream may mix servers and restarts), so callers reset it
when a stream starts over. Only the standard library and the event dataclasses: the TUI and CLI use it freely.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from typing import Any, cast

from regtui.registry.events import (
    Event,
    PullProgress,
    RequestFinished,
    RequestKind,
    RequestProgress,
    RequestStarted,
    ServerLog,
    ServerState,
    ServerStateName,
)

TEXT = "text"  # ServerLog level of a line that was not an event object

# Control characters (C0, DEL, C1, Unicode line/paragraph separators) arrive percent-decoded in paths and
# in header values; raw, a `%0a` in a path would split one logged request into two lines, or forge another,
# and an ESC from a watched log or stream would reach the terminal.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def safe(text: object) -> str:
    """`text` on one line, with control characters escaped as \\xNN (JSON output escapes them itself)."""
    return str(text).translate(_ESCAPES)


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def parse_time(value: object) -> float | None:
    """Seconds since the epoch from an ISO 8601 string (naive: local time) or a number; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):  # not a time, or one no platform clock can hold
        return None


# -- encoding --------------------------------------------------------------------------------------------
def request_object(s: RequestStarted, f: RequestFinished) -> dict[str, Any]:
    return {
        "event": "request",
        "time": iso(s.time),
        "client": s.client,
        "method": s.method,
        "path": s.path,
        "kind": s.kind,
        "repository": s.repository,
        "reference": s.reference,
        "status": f.status,
        "bytes": f.bytes_sent,
        "duration_ms": round(f.duration * 1000, 3),
        "user_agent": s.user_agent,
        "accept": list(s.accept),
        "error": f.error_code,
        "detail": f.detail,
        "id": s.id,
    }


def start_object(s: RequestStarted) -> dict[str, Any]:
    return {
        "event": "request_start",
        "id": s.id,
        "time": iso(s.time),
        "client": s.client,
        "method": s.method,
        "path": s.path,
        "kind": s.kind,
        "repository": s.repository,
        "reference": s.reference,
        "user_agent": s.user_agent,
        "accept": list(s.accept),
    }


def pull_object(p: PullProgress) -> dict[str, Any]:
    return {
        "event": "pull",
        "time": iso(p.updated),
        "client": p.client,
        "repository": p.repository,
        "reference": p.reference,
        "manifest": p.manifest_digest,
        "blobs_done": p.blobs_done,
        "blobs_total": p.blobs_total,
        "bytes_done": p.bytes_done,
        "bytes_total": p.bytes_total,
        "seconds": round(p.updated - p.started, 3),
        "user_agent": p.user_agent,
        "key": p.key,
        "started": iso(p.started),
        "finished": p.finished,
        "state": p.state,
        "error": p.error,
    }


def state_object(e: ServerState, now: float | None = None) -> dict[str, Any]:
    return {
        "event": "server",
        "time": iso(time.time() if now is None else now),
        "state": e.state,
        "url": e.url,
        "error": e.error,
    }


def log_object(e: ServerLog) -> dict[str, Any]:
    return {"event": "log", "time": iso(e.time or time.time()), "level": e.level, "message": e.message}


def dropped_object(count: int) -> dict[str, Any]:
    return {"event": "dropped", "time": iso(time.time()), "count": count}


class Encoder:
    """Bus events to objects. `live=True` (the SSE stream) also gives request starts, progress and unfinished
    pulls; the log (`live=False`) gives one object per finished request or pull."""

    def __init__(self, live: bool = False, capacity: int = 10_000):
        self.live = live
        self.capacity = capacity
        self.started: dict[int, RequestStarted] = {}

    def encode(self, event: Event) -> dict[str, Any] | None:
        if isinstance(event, RequestStarted):
            self.started[event.id] = event
            if len(self.started) > self.capacity:  # starts whose finish never came (should not happen)
                del self.started[next(iter(self.started))]
            return start_object(event) if self.live else None
        if isinstance(event, RequestProgress):
            return (
                {"event": "request_progress", "id": event.id, "bytes": event.bytes_sent, "total": event.total}
                if self.live
                else None
            )
        if isinstance(event, RequestFinished):
            start = self.started.pop(event.id, None)
            return request_object(start, event) if start is not None else None
        if isinstance(event, PullProgress):
            return pull_object(event) if self.live or event.finished else None
        if isinstance(event, ServerState):
            return state_object(event)
        if isinstance(event, ServerLog):
            return log_object(event)
        return None


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


# -- decoding --------------------------------------------------------------------------------------------
class _Bad(Exception):
    """A field is missing or of the wrong type."""


def _str(d: dict, key: str, default: str | None = "") -> str:
    v = d.get(key, default)
    if v is None and default is None:
        return ""
    if not isinstance(v, str):
        raise _Bad(key)
    return safe(v)


def _opt(d: dict, key: str) -> str | None:
    v = d.get(key)
    if v is not None and not isinstance(v, str):
        raise _Bad(key)
    return None if v is None else safe(v)


def _int(d: dict, key: str, default: int | None = 0) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(key)
    return int(v)


def _num(d: dict, key: str, default: float = 0.0) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _Bad(key)
    return float(v)


def _time(d: dict, key: str = "time", default: float | None = None) -> float:
    t = parse_time(d.get(key))
    if t is None:
        if default is None:
            raise _Bad(key)
        return default
    return t


def json_part(line: str) -> str | None:
    """The JSON object in a log line, also behind a prefix (`kubectl logs --timestamps`, `docker compose logs`)."""
    text = line.strip()
    if text.startswith("{"):
        return text
    at = text.find("{")
    if at > 0 and text.endswith("}"):
        return text[at:]
    return None


class Decoder:
    """Lines or objects to bus events; never raises. `clock` stamps lines that carry no time of their own."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self._ids = 0
        self._started: dict[Any, int] = {}  # the stream's request id -> ours
        self._generation = 0  # pull keys of a restarted server would clash with the earlier ones

    def reset(self) -> None:
        """The stream starts over (a reconnect, another server): its request ids mean new requests now."""
        self._started.clear()
        self._generation += 1

    def _new_id(self) -> int:
        self._ids += 1
        return self._ids

    def line(self, text: str) -> list[Event]:
        part = json_part(text)
        if part is not None:
            try:
                obj = json.loads(part)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return self.obj(obj, text)
        return [ServerLog(TEXT, safe(text.rstrip("\r\n")), 0.0)] if text.strip() else []

    def obj(self, d: dict, raw: str | None = None) -> list[Event]:
        try:
            return self._decode(d)
        except (_Bad, KeyError, TypeError, ValueError, OverflowError):
            return [ServerLog(TEXT, safe(raw.rstrip("\r\n") if raw is not None else dumps(d)), 0.0)]

    def _decode(self, d: dict) -> list[Event]:
        kind = d.get("event")
        if kind == "request":
            return self._request(d)
        if kind == "request_start":
            return [self._start(d)]
        if kind == "request_progress":
            ours = self._started.get(d.get("id"))
            if ours is None:  # its start came before we joined
                return []
            return [RequestProgress(ours, _int(d, "bytes"), _int(d, "total"))]
        if kind == "pull":
            return [self._pull(d)]
        if kind == "server":
            # From elsewhere: a state this version does not know is kept as sent (the views print it).
            state = ServerState(
                cast(ServerStateName, _str(d, "state", None) or "unknown"), _opt(d, "url"), _opt(d, "error")
            )
            if state.state == "starting":  # a log spanning a restart: ids and pull keys start over
                self.reset()
            return [state]
        if kind == "log":
            return [ServerLog(_str(d, "level", None) or "info", _str(d, "message", None), _time(d, default=0.0))]
        if kind == "dropped":
            n = _int(d, "count")
            return [
                ServerLog(
                    "warning",
                    f"{n} event{'s' * (n != 1)} dropped: this watcher fell behind the server; "
                    "request and byte counts are short by as much",
                    _time(d, default=0.0),
                )
            ]
        raise _Bad("event")

    def _start(self, d: dict) -> RequestStarted:
        accept = d.get("accept") or []
        if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
            raise _Bad("accept")
        ours = self._new_id()
        event = RequestStarted(
            ours,
            _time(d),
            _str(d, "client"),
            _str(d, "method"),
            _str(d, "path"),
            _opt(d, "repository"),
            _opt(d, "reference"),
            cast(RequestKind, _str(d, "kind", None) or "other"),
            _str(d, "user_agent", None),
            tuple(safe(a) for a in accept),
        )
        if "id" in d:
            self._started[d["id"]] = ours
            if len(self._started) > 10_000:
                del self._started[next(iter(self._started))]
        return event

    def _request(self, d: dict) -> list[Event]:
        ours = self._started.pop(d.get("id"), None) if "id" in d else None
        out: list[Event] = []
        start_time = _time(d)
        duration = _num(d, "duration_ms") / 1000
        status, sent = _int(d, "status"), _int(d, "bytes")
        error, detail = _opt(d, "error"), _opt(d, "detail")
        if ours is None:
            started = self._start({k: v for k, v in d.items() if k != "id"})
            ours = started.id
            out.append(started)
        out.append(RequestFinished(ours, start_time + duration, status, sent, duration, error, detail))
        return out

    def _pull(self, d: dict) -> PullProgress:
        updated = _time(d)
        started = parse_time(d.get("started"))
        if started is None:
            started = updated - _num(d, "seconds")
        client, manifest = _str(d, "client"), _str(d, "manifest")
        key = f"{self._generation}:{_opt(d, 'key') or f'{client}|{manifest}|{started:.3f}'}"
        finished = d.get("finished", True)  # the log prints finished pulls only, without the field
        if not isinstance(finished, bool):
            raise _Bad("finished")
        return PullProgress(
            key,
            client,
            _str(d, "user_agent", None),
            _str(d, "repository"),
            _str(d, "reference"),
            manifest,
            _int(d, "blobs_total"),
            _int(d, "blobs_done"),
            _int(d, "bytes_total"),
            _int(d, "bytes_done"),
            started,
            updated,
            finished,
            _opt(d, "error"),
        )
