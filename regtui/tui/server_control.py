"""The TUI app's embedded registry: started and stopped from the keyboard, served on a loop of its own in a worker
thread (or on the app's loop), refusing blobs known to be corrupt, its failures shown as one line."""

from __future__ import annotations

import asyncio

from textual import work

from regtui.registry.events import ServerState
from regtui.tui.appstate import AppState
from regtui.tui.serving import serve_archives, serve_on_own_loop, signal_stop
from regtui.tui.widgets.server import ServerView

STOP_GRACE = 2.0  # seconds running pulls get to finish when the server stops


class ServerControl(AppState):
    def action_toggle_server(self) -> None:
        if self.live.server.state in ("serving", "starting"):
            self.run_worker(self.stop_server(), group="server-stop")
        else:
            self.start_server()

    def start_server(self) -> None:
        if self.loading:
            self.notify("still opening the archives", severity="warning")
            return
        if not self.archives:
            self.notify("no archive is open, nothing to serve", severity="error")
            return
        addr = self.query_one(ServerView).bind_address()
        if isinstance(addr, str):
            self._server_failed(addr)
            return
        self.host, self.port = addr
        self._server_stop = asyncio.Event()
        self.live.apply(ServerState("starting"))
        self._refresh_server()
        if self.server_thread:
            self._server_worker = self.serve_in_thread(self.host, self.port, self._server_stop)
        else:
            self._server_worker = self.serve_on_loop(self.host, self.port, self._server_stop)

    @work(thread=True, group="server", exclusive=True, exit_on_error=False)
    def serve_in_thread(self, host: str, port: int, stop: asyncio.Event) -> None:
        """The server on its own event loop in a thread: 64 clients streaming blobs keep that loop busy, and
        key presses must not queue behind them (measured in bench/tui_bench.py)."""

        def on_loop(loop: asyncio.AbstractEventLoop | None) -> None:
            self._server_loop = loop

        error = serve_on_own_loop(self.archives, host, port, stop, self.bus, STOP_GRACE, on_loop, self._refuse())
        try:
            self.call_from_thread(self._serve_ended, error)
        except RuntimeError:  # the app already closed
            pass

    @work(group="server", exclusive=True, exit_on_error=False)
    async def serve_on_loop(self, host: str, port: int, stop: asyncio.Event) -> None:
        self._serve_ended(await serve_archives(self.archives, host, port, stop, self.bus, STOP_GRACE, self._refuse()))

    def _refuse(self) -> dict[str, str] | None:
        return self.corrupt if self.refuse_corrupt else None

    def _serve_ended(self, error: str | None) -> None:
        try:
            if not self.is_running or not self.query("#status"):  # the server outlived the screen (quitting)
                return
        except Exception:  # no screen any more
            return
        if error:
            self._server_failed(error)
        elif self.live.server.state not in ("stopped", "failed"):
            self.live.apply(ServerState("stopped"))
            self._refresh_server()

    def _server_failed(self, error: str) -> None:
        self.live.apply(ServerState("failed", error=error))
        self._refresh_server()
        self.notify(error, title="server", severity="error", timeout=10)

    def _signal_stop(self) -> None:
        signal_stop(self._server_stop, self._server_loop)

    async def stop_server(self, grace: float = STOP_GRACE) -> None:
        worker = self._server_worker
        if worker is None or worker.is_finished:
            return
        self.live.apply(ServerState("stopping", url=self.live.server.url))
        self._refresh_server()
        self._signal_stop()
        try:
            await asyncio.wait_for(asyncio.shield(worker.wait()), timeout=grace + 3.0)
        except (TimeoutError, Exception):
            worker.cancel()
        if self.live.server.state != "failed":
            self.live.apply(ServerState("stopped"))
        self._refresh_server()

    def action_copy_url(self) -> None:
        url = self.live.server.url or f"http://{self._hostport()}"
        self.copy_to_clipboard(url)
        self.notify(f"copied {url}")
