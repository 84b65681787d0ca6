"""Pilot tests of what a new user tripped on (issue 12): the digest on the first screen, view keys from any
focus, request details, pull states, live graphs, columns and panes that fit, a tag in two archives, and a
corrupt archive being served. Real app, real registry, real clients."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess

import httpx
import pytest
from textual.widgets import Sparkline, TabbedContent

from regtui.oci import open_archive
from regtui.oci.forensics import parse_expectation
from regtui.oci.serializations import Variant, serialize
from regtui.registry.events import RequestProgress, RequestStarted
from regtui.tui.app import RegtuiApp
from regtui.tui.widgets.common import VimTable
from regtui.tui.widgets.images import ImagesTree
from tests.helpers.support import free_port, require_tool
from tests.helpers.tui_support import flip_byte_in_layer, table_rows, text_of, until

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _indent3(path) -> str:
    image = open_archive(str(path)).images()[0]
    return "sha256:" + hashlib.sha256(serialize(image, Variant("docker", indent="   "))).hexdigest()


def _typo(digest: str) -> str:
    """The same digest with its last hex digit changed."""
    return digest[:-1] + ("0" if digest[-1] != "0" else "1")


def _expecting_indent3(seed_tar) -> tuple[RegtuiApp, str]:
    right = _indent3(seed_tar)
    return RegtuiApp(
        [str(seed_tar)], port=free_port(), measure=False, expectations=[parse_expectation(f"registry@{right}")]
    ), right


async def _opened(pilot, app) -> None:
    await until(pilot, lambda: app.archives and app.selection is not None, what="archives to open")
    await pilot.pause(0.1)


async def _serving(pilot, app) -> str:
    await pilot.press("s")
    await until(pilot, lambda: app.live.server.state == "serving", what="server")
    return app.live.server.url


# -- 1: the digest a registry serves, on the first screen ------------------------------------------------
async def test_first_screen_shows_the_served_digest_whole_and_the_expected_one(seed_tar):
    right = _indent3(seed_tar)
    wrong = _typo(right)
    app = RegtuiApp(
        [str(seed_tar)],
        port=free_port(),
        measure=False,
        expectations=[parse_expectation(f"registry@{right}"), parse_expectation(f"registry@{wrong}")],
    )
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        assert app.query_one(TabbedContent).active == "layers"  # the first screen
        status = text_of(app.query_one("#status")).splitlines()
        assert f"registry:2.8.1 served as {right}  ✓ as expected" in status[1]
        assert f"✗ expected {wrong}: no match" in status[1]  # whole, so a one-digit typo shows


async def test_first_screen_without_expect_shows_the_computed_digest(seed_tar):
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        served = app.selection.root.manifests[0].digest
        line = text_of(app.query_one("#status")).splitlines()[1]
        assert f"served as {served}" in line and "expected" not in line


async def test_a_redraw_after_the_screens_are_gone_does_nothing(seed_tar):
    """The live timer can fire after Textual popped the screens and before the app unmounts (seen once in a
    CI run: ScreenStackError from _redraw_live at teardown); a redraw then must do nothing."""
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
    assert not app.screen_stack
    app._redraw_live()


# -- 6: the Server view counts requests ------------------------------------------------------------------
async def test_server_view_counts_requests_like_the_header(seed_tar):
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        url = await _serving(pilot, app)
        async with httpx.AsyncClient() as client:
            for _ in range(3):
                assert (await client.get(f"{url}/v2/")).status_code == 200
        await pilot.press("5")
        await until(pilot, lambda: "3 requests" in text_of(app.query_one("#server-state")), what="counter")
        assert "3 requests" in text_of(app.query_one("#status"))
        await pilot.press("s")
        await until(pilot, lambda: app.live.server.state == "stopped", what="stop")


# -- 7: every view key from every focus but a text input -------------------------------------------------
async def test_view_keys_work_from_every_focus(seed_tar):
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        tabs = app.query_one(TabbedContent)
        for start in ("4", "5", "2", "6", "7"):
            await pilot.press(start)
            pane = app.query_one(f"#{tabs.active}")
            targets = [w for w in pane.query("*") if w.focusable and type(w).__name__ != "Input"]
            assert targets
            for widget in targets:
                await pilot.press(start)
                widget.focus()
                await pilot.pause()
                for key, tab in (("5", "server"), ("2", "config"), ("4", "verify"), ("1", "layers")):
                    await pilot.press(key)
                    await pilot.pause()
                    assert tabs.active == tab, f"{key} from {widget!r} left {tabs.active}"
                    await pilot.press(start)
                    widget.focus()
                    await pilot.pause()
        app.query_one("#server-port").focus()  # a text input keeps its digits
        await pilot.press("5")
        assert tabs.active == "server"


# -- 8, 3: pull states, failed pulls, request details ----------------------------------------------------
def test_pull_states_from_the_tracker():
    from regtui.registry.events import EventBus
    from regtui.registry.observe import PullTracker
    from regtui.registry.routes import Route

    bus, seen = EventBus(), {}
    bus.subscribe(lambda e: seen.__setitem__(e.key, e))
    t = PullTracker(bus)
    blobs = {"sha256:" + "a" * 64: 10, "sha256:" + "b" * 64: 20}
    t.manifest("h1", "skopeo", "registry", "2.8.1", "sha256:" + "1" * 64, blobs, set())  # inspect --raw
    t._end("pull-1", 0)
    t.manifest("h2", "curl", "registry", "2.8.1", "sha256:" + "1" * 64, blobs, set())  # left mid-blob
    t.blob_bytes("h2", "sha256:" + "a" * 64, 10)
    t.blob_bytes("h2", "sha256:" + "b" * 64, 5)
    t._end("pull-2", 0)
    t.manifest("h3", "skopeo", "registry", "2.8.1", "sha256:" + "1" * 64, blobs, set())  # all of it
    for d, n in blobs.items():
        t.blob_bytes("h3", d, n, complete=True)
    t.failed("h4", "containerd", Route("manifest", "registry", "2.8.2"), "404 MANIFEST_UNKNOWN: no manifest")
    t.manifest("h5", "skopeo", "registry", "2.8.1", "sha256:" + "1" * 64, blobs, set())  # a blob refused
    t.blob_failed("h5", "sha256:" + "b" * 64, "404 BLOB_UNKNOWN: failed verification")
    states = {p.client: p.state for p in seen.values()}
    assert states == {"h1": "manifest only", "h2": "incomplete", "h3": "done", "h4": "failed", "h5": "failed"}
    assert "failed verification" in next(p for p in seen.values() if p.client == "h5").error


async def test_a_typo_digest_is_explained_in_requests_and_fails_in_pulls(seed_tar):
    app, right = _expecting_indent3(seed_tar)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        url = await _serving(pilot, app)
        async with httpx.AsyncClient() as client:
            r = await client.get(
                f"{url}/v2/registry/manifests/{_typo(right)}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert r.status_code == 404
        await pilot.press("6")
        table = app.query_one("#requests-table", VimTable)
        await until(pilot, lambda: any(r[2].startswith("404") for r in table_rows(table)), what="the 404 row")
        rows = table_rows(table)
        # Short paths keep the last hex digits: the typo and the right digest look different.
        assert rows[-1][5].endswith(_typo(right)[-4:])
        table.focus()
        table.move_cursor(row=len(rows) - 1)
        await pilot.press("enter")
        await until(pilot, lambda: "did you mean" in text_of(app.query_one("#request-detail-text")), what="detail pane")
        detail = text_of(app.query_one("#request-detail-text"))
        assert f"/v2/registry/manifests/{_typo(right)}" in detail
        assert "application/vnd.oci.image.manifest.v1+json" in detail  # Accept
        assert "MANIFEST_UNKNOWN: manifest unknown" in detail and "no manifest" in detail
        assert f"did you mean  {right}? one hex digit differs" in detail
        assert "190" in detail or "bytes" in detail
        await pilot.press("enter")
        assert not app.query_one("#request-detail").display  # enter again closes it

        await pilot.press("7")
        pulls = app.query_one("#pulls-table", VimTable)
        await until(pilot, lambda: any(r[6] == "failed" for r in table_rows(pulls)), what="failed pull")
        await until(
            pilot, lambda: "MANIFEST_UNKNOWN" in text_of(app.query_one("#pull-graph-label")), what="the pull's error"
        )
        await pilot.press("s")
        await until(pilot, lambda: app.live.server.state == "stopped", what="stop")


# -- 12: live graphs and the per-pull timeline, from a real skopeo pull ----------------------------------
async def test_graphs_and_timeline_of_a_real_pull(seed_tar, tmp_path):
    skopeo = require_tool("skopeo")
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        url = await _serving(pilot, app)
        await pilot.press("6")
        proc = await asyncio.create_subprocess_exec(
            skopeo,
            "copy",
            "--src-tls-verify=false",
            f"docker://{url.split('://')[1]}/registry:2.8.1",
            f"oci:{tmp_path / 'out'}",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()
        image = app.selection.image
        total = sum(l.descriptor.size for l in image.layers)
        await until(
            pilot, lambda: sum(app.query_one("#graph-bytes", Sparkline).data or []) >= total, what="bytes/s graph"
        )
        assert sum(app.query_one("#graph-requests", Sparkline).data) >= len(image.layers) + 2
        assert "peak" in text_of(app.query_one("#graph-bytes-label"))
        await pilot.press("7")
        pulls = app.query_one("#pulls-table", VimTable)
        await until(pilot, lambda: any(r[6] == "done" for r in table_rows(pulls)), what="done pull")
        await until(pilot, lambda: "manifest" in text_of(app.query_one("#pull-timeline")), what="timeline")
        timeline = text_of(app.query_one("#pull-timeline"))
        for layer in image.layers:
            assert layer.digest.split(":")[1][:12] in timeline
        assert "█" in timeline
        assert sum(app.query_one("#pull-graph", Sparkline).data) >= total
        await pilot.press("s")
        await until(pilot, lambda: app.live.server.state == "stopped", what="stop")


# -- 9: live columns fit their values; the tree fits names and resizes ------------------------------------
async def test_live_columns_grow_with_their_values_and_the_tree_resizes(seed_tar, tmp_path):
    long = tmp_path / "a-seed-image-with-a-long-name.tar"
    shutil.copy(seed_tar, long)
    app = RegtuiApp([str(long)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        tree = app.query_one(ImagesTree)
        assert tree.outer_size.width >= len(long.name) + 4  # the name is not cut
        width = tree.outer_size.width
        await pilot.press("greater_than_sign")
        await pilot.pause()
        assert tree.outer_size.width == width + 4
        await pilot.press("less_than_sign", "less_than_sign")
        await pilot.pause()
        assert tree.outer_size.width == width - 4

        await pilot.press("6")
        app.bus.publish(
            RequestStarted(
                1,
                1000.0,
                "127.0.0.1:1",
                "GET",
                "/v2/r/blobs/sha256:" + "a" * 64,
                "r",
                "sha256:" + "a" * 64,
                "blob",
                "t",
            )
        )
        app.bus.publish(RequestProgress(1, 10, 90_000_000))
        await pilot.pause(0.4)
        app.bus.publish(RequestProgress(1, 31_457_280, 90_000_000))
        await pilot.pause(0.4)
        table = app.query_one("#requests-table", VimTable)
        cell = table_rows(table)[0][3]
        assert cell == "30.0 MiB/85.8 MiB"
        column = next(c for c in table.columns.values() if c.key.value == "bytes")
        assert column.get_render_width(table) >= len(cell) + 2  # shown whole, unit included


# -- 10: the header with three archives keeps three lines, the server line included ----------------------
async def test_header_does_not_wrap_with_three_archives(seed_tar, tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"seed-image-number-{i}-with-a-long-name.tar"
        shutil.copy(seed_tar, p)
        paths.append(str(p))
    app = RegtuiApp(paths, port=free_port(), measure=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await _opened(pilot, app)
        lines = text_of(app.query_one("#status")).rstrip("\n").splitlines()
        assert len(lines) == 3 and app.query_one("#status").size.height == 3
        assert "3 images" in lines[0] and "press s to serve" in lines[2]
        shown = app.query_one("#status").render_lines(app.query_one("#status").region.reset_offset)
        assert "stopped" in "".join(seg.text for seg in shown[2])  # really on screen, not wrapped away


# -- 11: a tag in two archives --------------------------------------------------------------------------
async def test_a_tag_in_two_archives_says_which_wins_and_how_to_reach_the_other(seed_tar, docker_tar):
    app = RegtuiApp([str(seed_tar), str(docker_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("5")
        other = open_archive(str(docker_tar)).roots[0].manifests[0].digest
        names = text_of(app.query_one("#server-names"))
        assert [line.split()[0] for line in names.splitlines() if line.startswith("  registry")] == [
            "registry:2.8.1",
            "registry:2.8.1",
        ]
        assert f"the tag is served from {seed_tar.name}, given first" in names
        assert "reachable by digest only" in names
        assert f"docker pull 127.0.0.1:{app.port}/registry@{other}" in names


# -- 15: by-digest pull commands after --expect matched --------------------------------------------------
async def test_pull_commands_include_the_expected_digest(seed_tar):
    app, right = _expecting_indent3(seed_tar)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("3")
        options = app.query_one("#pull-commands")
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert f"docker pull 127.0.0.1:{app.port}/registry:2.8.1" in prompts
        assert f"docker pull 127.0.0.1:{app.port}/registry@{right}" in prompts


# -- 2: serving a corrupt archive ------------------------------------------------------------------------
@pytest.mark.parametrize("refuse", [True, False], ids=["refused", "served-anyway"])
async def test_serving_a_corrupt_archive_warns_flags_and_refuses(seed_tar, tmp_path, refuse):
    skopeo = require_tool("skopeo")
    bad = tmp_path / "bad.tar"
    digest = flip_byte_in_layer(seed_tar, bad)
    app = RegtuiApp([str(bad)], port=free_port(), measure=False, refuse_corrupt=refuse)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("v")
        await until(pilot, lambda: str(bad) in app.verify_reports, timeout=60, what="verification")
        assert digest in app.corrupt
        url = await _serving(pilot, app)
        await until(pilot, lambda: "⚠" in text_of(app.query_one("#status")), what="the warning")
        status = text_of(app.query_one("#status"))
        assert "⚠ 1 blob failed verification" in status
        assert ("refused to clients" if refuse else "served anyway") in status
        proc = await asyncio.create_subprocess_exec(
            skopeo,
            "copy",
            "--retry-times=0",
            "--src-tls-verify=false",
            f"docker://{url.split('://')[1]}/registry:2.8.1",
            f"oci:{tmp_path / 'out'}",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode != 0
        if refuse:
            assert f"reading blob {digest}" in err.decode() and "404" in err.decode()  # not a digest mismatch
        else:
            assert "digest" in err.decode().lower()
        await pilot.press("6")
        table = app.query_one("#requests-table", VimTable)
        await until(pilot, lambda: any("✗ corrupt" in r[2] for r in table_rows(table)), what="flagged row")
        flagged = [r for r in table_rows(table) if "✗ corrupt" in r[2]]
        assert all(r[2].startswith("404 BLOB_UNKNOWN" if refuse else "200") for r in flagged)
        if refuse:
            await pilot.press("7")
            pulls = app.query_one("#pulls-table", VimTable)
            await until(pilot, lambda: any(r[6] == "failed" for r in table_rows(pulls)), what="failed pull")
        await pilot.press("s")
        await until(pilot, lambda: app.live.server.state == "stopped", what="stop")


def test_refused_blobs_answer_blob_unknown_on_both_paths(seed_tar):
    """The registry's own check (fast path and Quart path): a refused digest gets a spec error, not bytes."""
    from quart.testing import QuartClient  # noqa: F401  (Quart's test client drives the non-fast path)

    from regtui.registry.app import create_app

    archive = open_archive(str(seed_tar))
    layer = archive.images()[0].layers[0]
    refuse: dict[str, str] = {}
    app = create_app([archive], refuse=refuse, fast=False)

    async def get() -> tuple[int, bytes]:
        client = app.test_client()
        r = await client.get(f"/v2/registry/blobs/{layer.digest}")
        return r.status_code, await r.get_data()

    assert asyncio.run(get())[0] == 200
    refuse[layer.digest] = "digest mismatch"  # filled while serving, as the TUI does
    status, body = asyncio.run(get())
    assert status == 404 and b"BLOB_UNKNOWN" in body and b"failed verification" in body
    assert layer.digest.encode() in body
