"""Messages the app's parts exchange (dataclasses, posted from workers and subscribers; thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from regtui.tui.facts import Selection
from regtui.tui.measure import LayerFacts

if TYPE_CHECKING:
    from regtui.oci.verify import VerifyReport


@dataclass
class SelectionChanged(Message):
    """The Images tree moved to another archive, image or platform."""

    selection: Selection


class RegistryEvents(Message):
    """Registry events are waiting in the app's queue: one message per batch, so a fast pull cannot flood the
    message queue (the events themselves stay in the queue, drained when this is handled)."""


@dataclass
class LayerMeasured(Message):
    archive_path: str
    facts: LayerFacts


@dataclass
class VerifyProgress(Message):
    done: int
    total: int
    label: str


@dataclass
class VerifyDone(Message):
    archive_path: str
    report: VerifyReport | None
    error: str | None = None
    elapsed: float = 0.0
