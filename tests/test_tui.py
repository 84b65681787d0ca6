"""Pilot tests: the real app on real archives, the real embedded registry, real skopeo pulls."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import threading

import httpx
import pytest
from textual.widgets import Input, OptionList, TabbedContent

from regtui.oci import open_archive
from regtui.tui.app import RegtuiApp
from regtui.tui.widgets.common import VimTable
from regtui.tui.widgets.images import ImagesTree
from tests.helpers.containerd import running_containerd
from tests.helpers.support import free_port, require_tool, tar_folder
from tests.helpers.tui_support import flip_byte_in_layer, table_rows, text_of, until

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Verification results are cached per user; each test starts with an empty cache of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


async def _opened(pilot, app) -> None:
    await until(pilot, lambda: app.archives and app.selection is not None, what="archives to open")


@pytest.mark.parametrize(
    "fmt", ["crane-tarball", "docker-save-legacy", "oci-archive", "oci-layout", "multiarch-layout", "multiarch-archive"]
)
async def test_each_format_opens_and_fills_every_view(all_formats, fmt):
    path = all_formats[fmt]
    expected = open_archive(str(path))
    app = RegtuiApp([str(path)], port=free_port())
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        assert text_of(app.query_one("#status")).count(os.path.basename(str(path))) == 1
        image = app.selection.image
        assert (image is not None and image.platform is None) or str(image.platform) == "linux/amd64"
        layers = app.query_one("#layers-table", VimTable)
        assert layers.row_count == len(expected.images()[0].layers) == 5
        # Uncompressed sizes are measured in a thread worker, then every layer gets its check mark.
        await until(pilot, lambda: all(r[6] == "✓" for r in table_rows(layers)), what="layer checks")
        assert all(r[4] != "—" for r in table_rows(layers))
        await pilot.press("2")
        assert "linux/amd64" in text_of(app.query_one("#config-summary"))
        assert '"architecture": "amd64"' in text_of(app.query_one("#config-json"))
        await pilot.press("3")
        forms = table_rows(app.query_one("#forms-table", VimTable))
        assert forms and sum("served by tag" in r[4] for r in forms) == 1
        assert app.query_one("#pull-commands", OptionList).option_count == 4


async def test_multiarch_tree_drives_the_views(multiarch_dir):
    app = RegtuiApp([str(multiarch_dir)], port=free_port())
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        tree = app.query_one(ImagesTree)
        labels = [str(n.label) for n in tree._walk()]
        assert any("index · 2 platforms" in l for l in labels)
        assert any(l.startswith("linux/arm64/v8") for l in labels)
        tree.focus()
        arm = next(n for n in tree._walk() if str(n.label).startswith("linux/arm64"))
        tree.move_cursor(arm)
        await until(
            pilot,
            lambda: app.selection.image is not None and str(app.selection.image.platform) == "linux/arm64/v8",
            what="arm64 selection",
        )
        await pilot.press("2")
        assert "linux/arm64/v8" in text_of(app.query_one("#config-summary"))
        await pilot.press("3")
        forms = table_rows(app.query_one("#forms-table", VimTable))
        assert "OCI index" in forms[0][0] and "served by tag" in forms[0][4]
        assert "linux/arm64/v8" in forms[1][0]


async def test_layers_filter_sort_and_detail(seed_tar):
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        table = app.query_one("#layers-table", VimTable)
        table.focus()
        await pilot.press("o")  # sort by size: the largest layer first
        sizes = [l.descriptor.size for l in app.selection.image.layers]
        assert table_rows(table)[0][0] == str(sizes.index(max(sizes)) + 1)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"registry")
        rows = table_rows(table)
        assert len(rows) == 1 and "layer registry" in rows[0][7]
        detail = text_of(app.query_one("#layer-detail-text"))
        full = next(l.digest for l in app.selection.image.layers if l.digest.startswith(rows[0][1]))
        assert full in detail and "regtui-harness: layer registry" in detail
        assert "uncompressed" in detail and "—" in detail  # not measured: shown as unknown, never blocking
        await pilot.press("escape")
        assert table.row_count == 5
        await pilot.press("j", "j")
        assert table.cursor_row == 2


async def test_manifest_digest_and_commands_are_copied(seed_tar):
    port = free_port()
    app = RegtuiApp([str(seed_tar)], port=port, measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("3")
        app.query_one("#forms-table").focus()
        await pilot.press("y")
        assert app.clipboard == app.selection.image.manifests[0].digest
        app.query_one("#pull-commands").focus()
        await pilot.press("down", "enter")
        assert app.clipboard == (
            f"skopeo copy --src-tls-verify=false docker://127.0.0.1:{port}/registry:2.8.1 oci:registry"
        )


async def test_help_and_command_palette(seed_tar):
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        assert type(app.screen).__name__ != "HelpScreen"
        await pilot.press("ctrl+p")
        await pilot.press(*"Show Pulls")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.query_one(TabbedContent).active == "pulls", what="palette command")
        await pilot.click("#--content-tab-config")  # the mouse works too
        assert app.query_one(TabbedContent).active == "config"


async def test_unopenable_archive_is_a_message_not_a_crash(tmp_path, seed_tar):
    bad = tmp_path / "not-an-image.tar"
    bad.write_bytes(b"hello, this is not a tar archive" * 20)
    app = RegtuiApp([str(bad), str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        assert len(app.failures) == 1 and "not-an-image.tar" in app.failures[0]
        labels = [str(n.label) for n in app.query_one(ImagesTree)._walk()]
        assert any(l.startswith("✗") and "not-an-image.tar" in l for l in labels)


async def test_busy_port_is_an_error_message(seed_tar):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        app = RegtuiApp([str(seed_tar)], port=port, measure=False)
        async with app.run_test(size=SIZE) as pilot:
            await _opened(pilot, app)
            await pilot.press("s")
            await until(pilot, lambda: app.live.server.state == "failed", what="server failure")
            assert "already in use" in app.live.server.error
            await pilot.pause(0.3)
            assert "already in use" in text_of(app.query_one("#status"))
            assert app.is_running


async def test_verify_shows_the_mismatch_of_a_corrupted_layer(seed_tar, tmp_path):
    bad = tmp_path / "corrupt.tar"
    digest = flip_byte_in_layer(seed_tar, bad)
    app = RegtuiApp([str(bad)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("v")
        assert app.query_one(TabbedContent).active == "verify"
        await until(pilot, lambda: str(bad) in app.verify_reports or app.verify_errors, timeout=60, what="verification")
        assert not app.verify_errors
        await pilot.pause(0.2)
        status = text_of(app.query_one("#verify-status"))
        assert "✗" in status and "mismatch" in status
        rows = table_rows(app.query_one("#verify-table", VimTable))
        bad_rows = [r for r in rows if r[0].startswith("✗")]
        assert bad_rows and any(digest[:20] in " ".join(r) for r in bad_rows)
        detail = text_of(app.query_one("#verify-detail-text"))
        assert "expected" in detail and "found" in detail and "likely cause" in detail
        await pilot.press("1")
        layers = table_rows(app.query_one("#layers-table", VimTable))
        assert [r[6] for r in layers if digest.startswith(r[1])] == ["✗"]


async def test_verify_of_a_good_archive_passes(seed_tar):
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("v")
        await until(
            pilot, lambda: str(seed_tar) in app.verify_reports or app.verify_errors, timeout=60, what="verification"
        )
        assert not app.verify_errors
        await pilot.pause(0.2)
        assert "✓" in text_of(app.query_one("#verify-status"))
        assert not any(r[0].startswith("✗") for r in table_rows(app.query_one("#verify-table", VimTable)))


async def test_serve_and_watch_a_real_skopeo_pull(seed_tar, tmp_path):
    skopeo = require_tool("skopeo")
    port = free_port()
    app = RegtuiApp([str(seed_tar)], port=port, measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("s")
        await until(pilot, lambda: app.live.server.state == "serving", what="server to serve")
        assert app.live.server.url == f"http://127.0.0.1:{port}"
        await pilot.pause(0.3)
        assert f"serving http://127.0.0.1:{port}" in text_of(app.query_one("#status"))
        await pilot.press("u")
        assert app.clipboard == f"http://127.0.0.1:{port}"

        proc = await asyncio.create_subprocess_exec(
            skopeo,
            "copy",
            "-q",
            "--src-tls-verify=false",
            f"docker://127.0.0.1:{port}/registry:2.8.1",
            f"oci:{tmp_path / 'pulled'}:registry:2.8.1",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # The UI answers keys while the pull runs.
        await pilot.press("6")
        assert app.query_one(TabbedContent).active == "requests"
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()

        table = app.query_one("#requests-table", VimTable)
        await until(
            pilot,
            lambda: any("/blobs/" in r[5] and r[2] == "200" for r in table_rows(table)),
            what="blob requests in the log",
        )
        rows = table_rows(table)
        assert any(r[1] == "GET" and r[5] == "/v2/registry/manifests/2.8.1" and r[2] == "200" for r in rows)
        assert all("skopeo" in r[7] for r in rows)
        assert all(r[6].startswith("127.0.0.1:") for r in rows)
        assert app.live.bytes_total >= sum(l.descriptor.size for l in app.selection.image.layers)

        await pilot.press("7")
        pulls = app.query_one("#pulls-table", VimTable)
        await until(pilot, lambda: any(r[6] == "done" for r in table_rows(pulls)), what="finished pull row")
        row = table_rows(pulls)[0]
        assert row[1] == "registry:2.8.1" and row[2] in ("6/6", "5/5") and "100%" in row[4]

        # A 404 is highlighted and the status filter finds it.
        proc = await asyncio.create_subprocess_exec(
            skopeo,
            "inspect",
            "--tls-verify=false",
            f"docker://127.0.0.1:{port}/registry:nope",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        await asyncio.wait_for(proc.communicate(), timeout=60)
        await pilot.press("6", "slash", *"4xx")
        await until(
            pilot,
            lambda: table.row_count >= 1 and all(r[2].startswith("404") for r in table_rows(table)),
            what="404 filter",
        )

        await pilot.press("escape", "s")
        await until(pilot, lambda: app.live.server.state == "stopped", what="server to stop")
        with pytest.raises(OSError):  # nothing listens any more
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        await pilot.press("s")  # and it starts again on the same port
        await until(pilot, lambda: app.live.server.state == "serving", what="server to serve again")


@pytest.mark.parametrize("server_thread", [True, False], ids=["own-thread", "app-loop"])
async def test_quit_stops_the_server(seed_tar, server_thread):
    port = free_port()
    app = RegtuiApp([str(seed_tar)], port=port, measure=False, server_thread=server_thread)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("s")
        await until(pilot, lambda: app.live.server.state == "serving", what="server to serve")
        got = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/v2/")
        assert got.status_code == 200
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="app to exit")
    with pytest.raises(OSError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_expected_digests_show_in_the_manifests_view(seed_tar):
    from regtui.oci.forensics import parse_expectation

    oci = open_archive(str(seed_tar)).images()[0].manifests[1]
    missing = "sha256:" + "ab" * 32
    exps = [parse_expectation(f"registry:2.8.1@{oci.digest}"), parse_expectation(f"registry:2.8.1@{missing}")]
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False, expectations=exps)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("3")
        text = text_of(app.query_one("#manifest-expected"))
        assert f"✓ expected registry:2.8.1@{oci.digest}" in text
        assert f"✗ expected registry:2.8.1@{missing}" in text and "no match" in text
        # The expected OCI form is now what a client gets by tag.
        forms = table_rows(app.query_one("#forms-table", VimTable))
        assert [r[4] for r in forms if oci.digest.startswith(r[1])] == ["✓ served by tag"]


async def test_requests_ring_is_bounded_and_follow_toggles(seed_tar):
    from regtui.registry.events import RequestFinished, RequestStarted

    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False, capacity=10)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("6")
        table = app.query_one("#requests-table", VimTable)

        def burst(start: int, n: int) -> None:
            for i in range(start, start + n):
                app.bus.publish(
                    RequestStarted(
                        i, 1000.0 + i, "127.0.0.1:1", "GET", f"/v2/r/manifests/t{i}", "r", f"t{i}", "manifest", "test"
                    )
                )
                app.bus.publish(RequestFinished(i, 1000.0 + i, 404 if i % 2 else 200, 10, 0.001))

        burst(0, 30)
        await until(
            pilot, lambda: table.row_count == 10 and table_rows(table)[-1][5].endswith("t29"), what="last 10 requests"
        )
        assert [r[5].rsplit("t", 1)[1] for r in table_rows(table)] == [str(i) for i in range(20, 30)]
        assert table.cursor_row == 9  # following the newest
        assert app.live.requests_total == 30
        await pilot.press("f", "g")  # follow off, cursor to the top
        burst(30, 3)
        await until(pilot, lambda: table_rows(table)[-1][5].endswith("t32"), what="new requests")
        assert table.cursor_row == 0
        assert "follow ○" in text_of(app.query_one("#requests-info"))


async def test_nothing_openable_exits_with_the_reason(tmp_path):
    bad = tmp_path / "broken.tar"
    bad.write_bytes(b"\0" * 100)
    app = RegtuiApp([str(bad)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.failures, what="the failure")
    assert app.return_code == 2 and "broken.tar" in app.failures[0]


def test_cli_refuses_a_missing_archive_before_starting(tmp_path):
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "regtui", str(tmp_path / "nope.tar")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "nope.tar: no such file or directory" in r.stderr and "Traceback" not in r.stderr


async def test_push_into_a_real_registry(seed_tar, tmp_path, monkeypatch):
    from textual.widgets import Button, Input, RichLog

    from tests.helpers.distribution import DistributionRegistry

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    with DistributionRegistry(tmp_path / "registry") as reg:
        app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
        async with app.run_test(size=SIZE) as pilot:
            await _opened(pilot, app)
            await pilot.press("P")
            screen = app.screen
            assert type(screen).__name__ == "PushScreen"
            screen.query_one("#push-target", Input).value = f"{reg.host}/team"
            await pilot.click("#push-start")
            status = screen.query_one("#push-status")
            await until(pilot, lambda: not screen.running and "…" not in text_of(status), timeout=60, what="the push")
            assert text_of(status).startswith("✓ pushed 6 blobs"), text_of(status)
            log = "\n".join(str(line.text) for line in screen.query_one(RichLog).lines)
            assert "team/registry:2.8.1" in log
            assert screen.query_one("#push-start", Button).disabled is False
        digest = app.selection.image.manifests[0].digest
        r = await asyncio.to_thread(
            httpx.head,
            f"{reg.url}/v2/team/registry/manifests/2.8.1",
            headers={"Accept": app.selection.image.manifests[0].media_type},
        )
        assert r.status_code == 200 and r.headers["docker-content-digest"] == digest


class HoldingProxy:
    """Forwards 127.0.0.1:<port> to a registry until `hold_after` bytes went upstream, then keeps every further
    byte from the client (a registry gone slow) until released; counts the client connections still open."""

    def __init__(self, upstream_port: int, hold_after: int):
        self.upstream, self.hold_after = upstream_port, hold_after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.sent = 0
        self.open = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream))
            with self.lock:
                self.open += 1
            threading.Thread(target=self._up, args=(c, u), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c), daemon=True).start()

    def _up(self, c: socket.socket, u: socket.socket) -> None:
        held = bytearray()  # read on while holding, so that the client closing is seen
        try:
            while data := c.recv(65536):
                with self.lock:
                    self.sent += len(data)
                    hold = self.sent >= self.hold_after and not self.release.is_set()
                if hold:
                    self.holding.set()
                    held += data
                    continue
                u.sendall(bytes(held) + data)
                held.clear()
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1  # the client closed its side (or reset it)
            for s in (c, u):
                s.close()

    def _down(self, u: socket.socket, c: socket.socket) -> None:
        try:
            while data := u.recv(65536):
                c.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.release.set()
        self.sock.close()


async def test_closing_the_push_screen_cancels_the_push(seed_tar, tmp_path, monkeypatch):
    """Closing the dialog mid-upload stops the push: its thread ends and its connections close while the
    registry still holds the upload; nothing more reaches the registry, so no manifest lands."""
    from textual.widgets import Input

    from tests.helpers.distribution import DistributionRegistry

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    with DistributionRegistry(tmp_path / "registry") as reg:
        proxy = HoldingProxy(reg.port, hold_after=1 << 20)  # the seed's blobs are ~10 MiB
        try:
            app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
            async with app.run_test(size=SIZE) as pilot:
                await _opened(pilot, app)
                await pilot.press("P")
                screen = app.screen
                screen.query_one("#push-target", Input).value = f"127.0.0.1:{proxy.port}/cancel"
                await pilot.click("#push-start")
                await until(pilot, proxy.holding.is_set, timeout=60, what="the upload to stall")
                assert screen.running and screen.worker is not None and not screen.worker.is_finished
                await pilot.press("escape")
                assert type(app.screen).__name__ != "PushScreen"
                await until(pilot, lambda: screen.worker.is_finished, timeout=20, what="the push to stop")
                await until(pilot, lambda: proxy.open == 0, timeout=20, what="its connections to close")
                assert not proxy.release.is_set()  # still holding: the push stopped, not finished
        finally:
            proxy.close()
        r = await asyncio.to_thread(httpx.get, f"{reg.url}/v2/cancel/registry/tags/list")
        assert r.status_code == 404  # no manifest, so no tag, reached the registry


async def test_push_to_nowhere_is_a_message(seed_tar):
    from textual.widgets import Input

    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        await pilot.press("P")
        screen = app.screen
        screen.query_one("#push-target", Input).value = "Not A Registry!"
        await pilot.press("enter")
        assert "not" in text_of(screen.query_one("#push-status")).lower() and not screen.running
        screen.query_one("#push-target", Input).value = f"127.0.0.1:{free_port()}"
        await pilot.press("enter")
        await until(pilot, lambda: not screen.running, timeout=60, what="the failed push")
        assert text_of(screen.query_one("#push-status")).startswith("push failed: ")
        await pilot.press("escape")
        assert type(app.screen).__name__ != "PushScreen" and app.is_running


async def test_several_archives_in_one_window(seed_tar, multiarch_dir):
    app = RegtuiApp([str(seed_tar), str(multiarch_dir)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        status = text_of(app.query_one("#status"))
        assert "seed-image.tar, multiarch-layout" in status and "3 images" in status
        tree = app.query_one(ImagesTree)
        archives = [n for n in tree.root.children]
        assert len(archives) == 2
        tree.move_cursor(archives[1].children[0].children[1])  # multiarch: the arm64 child
        await until(
            pilot,
            lambda: (
                app.selection.archive.path == str(multiarch_dir)
                and str(app.selection.image.platform) == "linux/arm64/v8"
            ),
            what="second archive",
        )
        await pilot.press("v")
        await until(pilot, lambda: str(multiarch_dir) in app.verify_reports, timeout=60, what="verification")
        assert str(seed_tar) not in app.verify_reports  # verify works on the selected archive


async def test_a_cached_verification_shows_at_once(seed_tar):
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        assert "Press v to start" in text_of(app.query_one("#verify-status"))
        await pilot.press("v")
        await until(pilot, lambda: str(seed_tar) in app.verify_reports, timeout=60, what="verification")
    again = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with again.run_test(size=SIZE) as pilot:
        await _opened(pilot, again)
        assert again.verify_reports[str(seed_tar)].cached
        status = text_of(again.query_one("#verify-status"))
        assert "all" in status and "checks passed" in status and "earlier run" in status
        layers = table_rows(again.query_one("#layers-table", VimTable))
        assert all(r[6] == "✓" and r[4] != "—" for r in layers)  # marks and sizes without reading a layer


async def test_serve_and_watch_a_real_containerd_pull(seed_tar, tmp_path_factory):
    from regtui.tui.widgets.requests import short_path

    port = free_port()
    app = RegtuiApp([str(seed_tar)], port=port, measure=False)
    # A short base keeps containerd's socket paths under the 108-byte limit of AF_UNIX.
    with running_containerd(tmp_path_factory.mktemp("ctrd")) as sock:
        async with app.run_test(size=SIZE) as pilot:
            await _opened(pilot, app)
            image = app.selection.image
            await pilot.press("s")
            await until(pilot, lambda: app.live.server.state == "serving", what="server to serve")
            proc = await asyncio.create_subprocess_exec(
                require_tool("ctr"),
                "--address",
                sock,
                "-n",
                "tui",
                "image",
                "pull",
                "--plain-http",
                "--snapshotter",
                "native",
                f"127.0.0.1:{port}/registry:2.8.1",
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            await pilot.press("6")  # the UI answers keys while the pull runs
            assert app.query_one(TabbedContent).active == "requests"
            _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            assert proc.returncode == 0, err.decode()

            blobs = [image.config.descriptor.digest, *(l.digest for l in image.layers)]
            wanted = {short_path(f"/v2/registry/blobs/{d}") for d in blobs}
            table = app.query_one("#requests-table", VimTable)
            await until(
                pilot,
                lambda: wanted <= {r[5] for r in table_rows(table) if r[1] == "GET" and r[2] == "200"},
                what="every blob GET by digest in the log",
            )
            rows = table_rows(table)
            assert all(r[7].startswith("containerd") for r in rows)
            # containerd resolves the tag with HEAD, then GETs the manifest by the digest it was told.
            assert any(r[1] == "HEAD" and r[5] == "/v2/registry/manifests/2.8.1" and r[2] == "200" for r in rows)
            by_digest = short_path(f"/v2/registry/manifests/{image.manifests[0].digest}")
            assert any(r[1] == "GET" and r[5] == by_digest and r[2] == "200" for r in rows)
            assert not any(r[1] == "GET" and r[5] == "/v2/registry/manifests/2.8.1" for r in rows)

            await pilot.press("7")
            pulls = app.query_one("#pulls-table", VimTable)
            await until(pilot, lambda: any(r[6] == "done" for r in table_rows(pulls)), what="finished pull row")
            [row] = table_rows(pulls)
            assert row[1] == "registry:2.8.1" and row[2] == f"{len(blobs)}/{len(blobs)}"
            assert "100%" in row[4] and row[7].startswith("containerd")
            await pilot.press("s")
            await until(pilot, lambda: app.live.server.state == "stopped", what="server to stop")


def _random_gzip_archive(out, layers: int, size: int) -> None:
    """An OCI archive whose gzip layers hold random bytes: nothing compresses, so verifying reads it all."""
    from isal import igzip

    layout = out.with_suffix(".layout")
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        hexd = hashlib.sha256(data).hexdigest()
        (blobs / hexd).write_bytes(data)
        return {"digest": f"sha256:{hexd}", "size": len(data)}

    descs, diff_ids = [], []
    for _ in range(layers):
        raw = os.urandom(size)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(igzip.compress(raw, 0))})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"random layer {i}"} for i in range(layers)],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(json.dumps(config).encode())},
        "layers": descs,
    }
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                **blob(json.dumps(manifest).encode()),
                "annotations": {"org.opencontainers.image.ref.name": "big:1"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    tar_folder(layout, out)


async def test_verify_can_be_cancelled_and_run_again(tmp_path):
    from regtui.oci.cache import load_report
    from regtui.tui.messages import VerifyProgress

    big = tmp_path / "big.tar"
    _random_gzip_archive(big, layers=4, size=64 << 20)
    app = RegtuiApp([str(big)], port=free_port(), measure=False)
    # Whether a wall-clock race could still catch the run is up to the machine; so the worker's first
    # progress message with bytes done is held (after it is posted) until Cancel has been pressed.
    held, release = threading.Event(), threading.Event()
    post = app.post_message

    def holding_progress(message) -> bool:
        delivered = post(message)
        if (
            isinstance(message, VerifyProgress)
            and 0 < message.done < message.total
            and not release.is_set()
            and threading.current_thread() is not threading.main_thread()
        ):
            held.set()
            release.wait(30)
        return delivered

    app.post_message = holding_progress
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app)
        archive = app.archives[0]
        await pilot.press("v")
        await until(pilot, held.is_set, what="verification to report some bytes done")
        await until(
            pilot,
            lambda: (
                "verifying: " in text_of(app.query_one("#verify-status"))
                and not text_of(app.query_one("#verify-status")).startswith("verifying: 0 B")
            ),
            what="progress on screen",
        )
        await pilot.click("#verify-cancel")
        release.set()
        await until(pilot, lambda: app.verify_errors, what="the cancelled verification")
        await pilot.pause(0.1)
        assert app.verify_errors == {str(big): "verification cancelled"}
        assert "cancelled" in text_of(app.query_one("#verify-status"))
        assert str(big) not in app.verify_reports and load_report(archive) is None
        await pilot.press("1")  # still answering keys
        assert app.query_one(TabbedContent).active == "layers"
        await pilot.press("v")
        await until(pilot, lambda: str(big) in app.verify_reports, timeout=60, what="the second verification")
        await pilot.pause(0.2)
        assert "✓" in text_of(app.query_one("#verify-status")) and app.verify_reports[str(big)].ok
        assert load_report(archive) is not None
