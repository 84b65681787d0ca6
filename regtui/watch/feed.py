"""From lines (a JSON log, an SSE stream's data) to bus events: `--since`/`--until`, `--export`, decoding.

Every remote source hands its lines to one `Feed`; the feed keeps what falls in the time window, writes it to the
export file as JSON lines (the `--log-format json` schema; a line that is not an event object is exported as a
"log" object of level "text"), and publishes the decoded events on the bus the TUI reads.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from regtui.registry.eventjson import TEXT, Decoder, dumps, json_part, parse_time
from regtui.registry.events import Event, ServerLog


@dataclass(frozen=True)
class SourceState:
    """Where the events come from and how that goes; shown in the status line of `regtui watch`.

    state: "connecting", "connected", "reconnecting", "reading", "following", "ended" or "failed".
    """

    state: str
    label: str
    detail: str | None = None


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, now: float | None = None) -> float:
    """`--since`/`--until`: a duration ago (`90s`, `10m`, `2h`, `1d`) or an ISO 8601 time (`2026-01-31T08:00:00Z`;
    without a zone: local time). Raises ValueError with a message that says what is accepted."""
    value = text.strip()
    m = _DURATION.match(value)
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * _UNITS[m.group(2)]
    t = parse_time(value)
    if t is None:
        raise ValueError(
            f"{text!r} is neither a duration ago (90s, 10m, 2h, 1d) nor an ISO 8601 time (2026-01-31T08:00:00Z)"
        )
    return t


class Feed:
    def __init__(
        self,
        publish: Callable[[Event], None],
        since: float | None = None,
        until: float | None = None,
        export: IO[str] | None = None,
    ):
        self.publish = publish
        self.since = since
        self.until = until
        self.export = export
        self.decoder = Decoder()
        self.lines = 0
        self.objects = 0  # lines that held a JSON object

    def summary(self) -> str:
        """`N lines`, and what to do when none of them was an event (a log in the human format)."""
        text = f"{self.lines} line{'s' * (self.lines != 1)}"
        if self.lines and not self.objects:
            text += ", none of them JSON: run the server with --log-format json"
        return text

    def reset(self) -> None:
        """The stream starts over (another server instance)."""
        self.decoder.reset()

    def line(self, text: str) -> None:
        self.lines += 1
        part = json_part(text)
        obj = None
        if part is not None:
            try:
                obj = json.loads(part)
            except ValueError:
                obj = None
        if not isinstance(obj, dict):
            if text.strip():
                self._export({"event": "log", "time": None, "level": TEXT, "message": text.rstrip("\r\n")})
                self._publish(self.decoder.line(text))
            return
        self.objects += 1
        t = parse_time(obj.get("time"))
        if t is not None and (
            (self.since is not None and t < self.since) or (self.until is not None and t > self.until)
        ):
            return
        self._export(obj)
        self._publish(self.decoder.obj(obj, text))

    def _export(self, obj: dict) -> None:
        if self.export is None:
            return
        try:
            self.export.write(dumps(obj) + "\n")
            self.export.flush()  # a bug report should hold what was seen even if the watch is killed
        except ValueError:  # closed: the watch is quitting
            self.export = None
        except OSError as e:  # a full disk must not end the watch; it says so once
            self.export = None
            self.publish(ServerLog("error", f"--export stopped: {e.strerror or e}", time.time()))

    def _publish(self, events: list[Event]) -> None:
        for e in events:
            self.publish(e)
