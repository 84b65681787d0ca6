"""Running the embedded registry for the TUI, without any widget: until a stop event, on the caller's loop or
on a loop of its own (in a worker thread), reporting failure as one line instead of raising."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from regtui.oci.model import Archive
from regtui.registry.events import EventBus


async def serve_archives(
    archives: list[Archive],
    host: str,
    port: int,
    stop: asyncio.Event,
    bus: EventBus,
    grace: float,
    refuse: Mapping[str, str] | None = None,
) -> str | None:
    """Serve until `stop` is set (running pulls then get `grace` seconds); returns why it could not, or None.
    Blobs in `refuse` (digest -> why they cannot verify) are answered with an error instead of their bytes."""
    from regtui.registry.app import create_app
    from regtui.registry.server import BindError, serve

    try:
        app = create_app(archives, bus=bus, refuse=refuse)
        await serve(app, host=host, port=port, shutdown_trigger=stop.wait, bus=bus, grace=grace)
    except BindError as e:  # a busy port is a message, not a crash
        return str(e)
    except OSError as e:
        return f"cannot listen on {host}:{port}: {e.strerror or e}"
    except asyncio.CancelledError:
        raise
    except Exception as e:  # the UI must survive whatever the server does
        return f"{type(e).__name__}: {e}"
    return None


def serve_on_own_loop(
    archives: list[Archive],
    host: str,
    port: int,
    stop: asyncio.Event,
    bus: EventBus,
    grace: float,
    on_loop: Callable[[asyncio.AbstractEventLoop | None], None],
    refuse: Mapping[str, str] | None = None,
) -> str | None:
    """`serve_archives` on a new event loop in this (worker) thread; `on_loop` learns the loop, to stop it
    from another thread with `signal_stop`, and None when it is gone."""

    async def main() -> str | None:
        on_loop(asyncio.get_running_loop())
        return await serve_archives(archives, host, port, stop, bus, grace, refuse)

    try:
        return asyncio.run(main())  # also cancels what the grace period left running (pulls cut at quit)
    finally:
        on_loop(None)


def signal_stop(stop: asyncio.Event | None, loop: asyncio.AbstractEventLoop | None) -> None:
    """Set `stop` from any thread."""
    if stop is None:
        return
    if loop is None or loop.is_closed():
        stop.set()
        return
    try:
        loop.call_soon_threadsafe(stop.set)
    except RuntimeError:  # the loop closed in the meantime: the server is gone anyway
        pass
