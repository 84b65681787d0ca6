"""Snapshot tests of the main views (pytest-textual-snapshot): fixed port, fixed clock, fixed size, UTC.

Update after an intended UI change with `pytest tests/test_tui_snapshots.py --snapshot-update`, then look at
the pictures (`scripts/screenshots` renders the same views from a live server).
"""

from __future__ import annotations

import time

import pytest

from regtui.oci import open_archive
from regtui.tui.app import RegtuiApp
from tests.helpers.tui_support import T0, publish_demo_traffic, until

SIZE = (150, 42)
PORT = 5000


@pytest.fixture(autouse=True)
def utc(monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no cached verification from elsewhere
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _app(path, **kw) -> RegtuiApp:
    return RegtuiApp([open_archive(str(path))], "127.0.0.1", PORT, clock=lambda: T0 + 6, **kw)


async def _measured(pilot) -> None:
    app = pilot.app
    await until(
        pilot,
        lambda: app.selection is not None and app.layer_facts and all(v is not None for v in app.layer_facts.values()),
        what="layer measurement",
    )
    await until(pilot, lambda: app.layer_contents, what="the layers' files (indexed while measuring)")
    await pilot.pause(0.1)


def test_layers_view(snap_compare, seed_tar):
    assert snap_compare(_app(seed_tar), terminal_size=SIZE, run_before=_measured)


def test_config_view(snap_compare, seed_tar):
    assert snap_compare(_app(seed_tar, measure=False), press=["2"], terminal_size=SIZE)


def test_manifests_view(snap_compare, seed_tar):
    assert snap_compare(_app(seed_tar, measure=False), press=["3"], terminal_size=SIZE)


def test_multiarch_index(snap_compare, multiarch_dir):
    assert snap_compare(_app(multiarch_dir, measure=False), press=["3"], terminal_size=SIZE)


def test_verify_view(snap_compare, seed_tar):
    async def verified(pilot):
        await pilot.press("v")
        await until(pilot, lambda: pilot.app.verify_reports or pilot.app.verify_errors, timeout=60, what="verification")
        view = pilot.app.query_one("#verify-view")
        table = view.query_one("#verify-table")
        # The rows, the status line and the detail of the first row drawn: a condition, not a fixed pause.
        await until(
            pilot,
            lambda: (
                not view.running
                and table.row_count == len(view.rows) > 0
                and str(view.query_one("#verify-detail-text").content)
            ),
            what="the verify view drawn",
        )
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(_app(seed_tar, measure=False), terminal_size=SIZE, run_before=verified)


def _traffic(tab: str):
    async def run(pilot):
        app = pilot.app
        await until(pilot, lambda: app.selection is not None, what="selection")
        publish_demo_traffic(app.bus, app.selection.image, PORT)
        await pilot.pause(0.5)
        await pilot.press(tab)
        await pilot.pause(0.1)

    return run


def test_server_view(snap_compare, seed_tar):
    assert snap_compare(_app(seed_tar, measure=False), terminal_size=SIZE, run_before=_traffic("5"))


def test_requests_view(snap_compare, seed_tar):
    assert snap_compare(_app(seed_tar, measure=False), terminal_size=SIZE, run_before=_traffic("6"))


def test_pulls_view(snap_compare, seed_tar):
    assert snap_compare(_app(seed_tar, measure=False), terminal_size=SIZE, run_before=_traffic("7"))


def test_requests_detail_pane(snap_compare, seed_tar):
    async def run(pilot):
        await _traffic("6")(pilot)
        table = pilot.app.query_one("#requests-table")
        table.move_cursor(row=8)  # containerd's 404
        await pilot.press("enter")
        await pilot.pause(0.2)

    assert snap_compare(_app(seed_tar, measure=False), terminal_size=SIZE, run_before=run)


def test_first_screen_with_expect_and_three_archives(snap_compare, seed_tar, docker_tar, oci_tar):
    """The served digest and the --expect verdict on the first screen; the header stays three lines and the
    Layers header is aligned from the first render."""
    from regtui.oci.forensics import parse_expectation
    from tests.test_tui_inspector import _indent3

    archives = [open_archive(str(p)) for p in (seed_tar, docker_tar, oci_tar)]
    app = RegtuiApp(
        archives,
        "127.0.0.1",
        PORT,
        clock=lambda: T0 + 6,
        measure=False,
        expectations=[parse_expectation(f"registry@{_indent3(seed_tar)}")],
    )
    assert snap_compare(app, terminal_size=SIZE)


def test_help_screen(snap_compare, seed_tar):
    assert snap_compare(_app(seed_tar, measure=False), press=["question_mark"], terminal_size=SIZE)


@pytest.mark.parametrize("tab", ["6", "7"])
def test_watch_mode(snap_compare, seed_tar, tmp_path, monkeypatch, tab):
    """`regtui watch serve.log`: the demo traffic as a JSON log (live objects included), replayed; no archive."""
    from regtui.registry.eventjson import Encoder, dumps
    from regtui.registry.events import EventBus
    from regtui.watch.sources import LinesSource

    bus, enc, lines = EventBus(), Encoder(live=True), []
    bus.subscribe(lambda e: lines.append(dumps(o)) if (o := enc.encode(e)) is not None else None)
    publish_demo_traffic(bus, open_archive(str(seed_tar)).images()[0], PORT)
    monkeypatch.chdir(tmp_path)  # the status line shows the file as given
    (tmp_path / "serve.log").write_text("\n".join(["serving registry:2.8.1 from seed-image.tar", *lines]) + "\n")
    app = RegtuiApp([], clock=lambda: T0 + 6, source=LinesSource(path="serve.log"))

    async def replayed(pilot):
        await until(
            pilot, lambda: app.source_state is not None and app.source_state.state == "ended", what="the log replayed"
        )
        await pilot.press(tab)
        await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=SIZE, run_before=replayed)


def test_files_view(snap_compare, seed_tar):
    async def indexed(pilot):
        app = pilot.app
        await until(pilot, lambda: app.selection is not None, what="selection")
        await pilot.press("9")
        view = app.query_one("#files-view")
        await until(pilot, lambda: view.view is not None, timeout=60, what="indexing")
        await pilot.press("l", "j", "j")  # bin/ open, on a file: its versions in the detail pane
        await pilot.pause(0.2)

    assert snap_compare(_app(seed_tar, measure=False), terminal_size=SIZE, run_before=indexed)
