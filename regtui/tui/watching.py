"""Watch mode of the TUI app (`regtui watch`): no archive of its own, only what a remote server's events fill
(Server log, Requests, Pulls); the source publishes registry events on the app's bus, and how the watched
stream goes (`SourceState`) straight to the app."""

from __future__ import annotations

from textual.widgets import TabbedContent

from regtui.registry.events import Event
from regtui.tui.live_events import LiveEvents
from regtui.tui.widgets.images import ImagesTree
from regtui.tui.widgets.pulls import PullsView
from regtui.tui.widgets.requests import RequestsView
from regtui.tui.widgets.server import ServerView
from regtui.watch.feed import SourceState

ARCHIVE_TABS = ("layers", "config", "manifests", "verify", "package", "files")  # hidden while watching


class Watching(LiveEvents):
    def _watch_mode(self) -> None:
        """Hide the archive views and start the source (from on_mount, with `source=`)."""
        source = self.source
        if source is None:
            return
        self.query_one(ImagesTree).display = False
        tabs = self.query_one(TabbedContent)
        for tab in ARCHIVE_TABS:
            tabs.hide_tab(tab)
        tabs.active = "requests"
        self.query_one(ServerView).watching(source.label)
        self.query_one(RequestsView).empty_hint = f"no requests yet from {source.label}"
        self.query_one(PullsView).empty_hint = f"No pulls yet from {source.label}."
        source.start(self._publish_watched)

    def _publish_watched(self, event: Event | SourceState) -> None:
        """From the source's thread. Registry events go on the bus like the embedded server's; the source's
        own state is not a registry event (bus subscribers such as the JSON log encoder do not know it)."""
        if isinstance(event, SourceState):
            self._on_bus_event(event)
        else:
            self.bus.publish(event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Nothing of our own to serve, verify, push or look into while watching.
        watching = self.source is not None
        archive_only = action in ("toggle_server", "verify", "push") or (
            action == "show_tab" and bool(parameters) and parameters[0] in ARCHIVE_TABS
        )
        return not (watching and archive_only)
