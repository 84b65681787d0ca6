"""Registry events into the TUI app: whatever thread publishes them, they are queued, drained by one coalesced
message on the app's loop into `LiveState`, and drawn on a timer a few times a second, however fast they come."""

from __future__ import annotations

from textual.app import ScreenStackError
from textual.css.query import NoMatches
from textual.widgets import TabbedContent

from regtui.registry.events import Event, ServerLog
from regtui.tui.appstate import AppState
from regtui.tui.messages import RegistryEvents
from regtui.tui.widgets.pulls import PullsView
from regtui.tui.widgets.requests import RequestsView
from regtui.tui.widgets.server import ServerView
from regtui.watch.feed import SourceState

REDRAW_EVERY = 0.2  # live views redraw at most this often, however fast events arrive


class LiveEvents(AppState):
    def _start_live(self) -> None:
        """Listen to the bus and redraw on a timer (from on_mount)."""
        self._unsubscribe = self.bus.subscribe(self._on_bus_event)
        self._live_timer = self.set_interval(REDRAW_EVERY, self._redraw_live)

    def _stop_live(self) -> None:
        if self._live_timer is not None:
            self._live_timer.stop()

    def _on_bus_event(self, event: Event | SourceState) -> None:
        self._pending.append(event)
        if not self._flush_posted:
            self._flush_posted = True
            self.post_message(RegistryEvents())

    def on_registry_events(self, message: RegistryEvents) -> None:
        self._flush_posted = False
        while self._pending:
            self._apply(self._pending.popleft())

    def _apply(self, event: Event | SourceState) -> None:
        if isinstance(event, SourceState):  # how the watched stream goes: status line, and the Server log
            if event != self.source_state:
                level = "error" if event.state == "failed" else "warning" if event.state == "reconnecting" else "info"
                self.live.apply(
                    ServerLog(
                        level,
                        f"watch {event.label}: {event.state}{': ' + event.detail if event.detail else ''}",
                        self.clock(),
                    )
                )
            self.source_state = event
            self._source_changed = True
            return
        self.live.apply(event)

    def _redraw_live(self) -> None:
        try:
            screen = self.screen
        except ScreenStackError:  # shutting down: the screens go before the timer does
            return
        tabs = screen.query(TabbedContent)
        if not tabs or not self.is_running:  # a dialog (help, push) is on top: changes keep until it closes
            return
        try:
            self._draw_changes(tabs.first())
        except NoMatches:
            if self._running and not self._closing:  # a widget missing while the app runs is a bug: say so
                raise  # (while it shuts down, the views go before the timer does)

    def _draw_changes(self, tabs: TabbedContent) -> None:
        changes = self.live.take_changes()
        tab = tabs.active
        if changes.rows or changes.evicted:
            self.query_one(RequestsView).apply(changes)
        if tab == "requests" and (changes or self.live.server.state == "serving"):
            self.query_one(RequestsView).draw_graphs()  # the graphs scroll with time, traffic or not
        if changes.pulls:
            self.query_one(PullsView).show(self.live.pulls)
        elif tab == "pulls" and self.live.server.state == "serving":
            self.query_one(PullsView).draw_selected()
        if changes.logs:
            self.query_one(ServerView).add_logs(changes.logs)
        if changes.server:
            self._refresh_server()
        elif changes or self._source_changed:
            if changes.rows:
                self.query_one(ServerView).show_state(self.live.server, self.live.requests_total)
            self._status()
        self._source_changed = False
