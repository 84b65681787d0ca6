"""The TUI on Zarf packages: the tree package → components → images, the Package view before and after
verification, the unpack progress while a compressed package fills the cache, Zarf names in Manifests."""

from __future__ import annotations

import zlib

import pytest
from textual.widgets import OptionList, TabbedContent

from regtui.tui.app import RegtuiApp
from regtui.tui.widgets.images import ImagesTree
from tests.helpers.support import free_port
from tests.helpers.tui_support import text_of, until
from tests.helpers.zarf_support import ZARF_FIXTURE

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _labels(app) -> list[tuple[int, str]]:
    tree = app.query_one(ImagesTree)
    out = []
    for node in tree._walk():
        depth, n = 0, node
        while n.parent is not None and n.parent is not tree.root:
            depth, n = depth + 1, n.parent
        out.append((depth, str(node.label)))
    return out


async def test_split_package_tree_progress_and_package_view(zarf_forms):
    app = RegtuiApp([str(zarf_forms["split"])], port=free_port(), measure=False)
    shown = []
    original = app._set_loading
    app._set_loading = lambda text: (shown.append(text), original(text))[1]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.archives and app.selection is not None, what="the package to open")
        # The unpack progress reached the status line with a bar, bytes and speed.
        assert any(s.startswith("unpacking ") and "━" in s and "/s" in s for s in shown), shown
        labels = _labels(app)
        assert labels[0][0] == 0 and "multi 1.0.0" in labels[0][1]
        comps = [text.split()[0] for depth, text in labels if depth == 1]
        assert comps == ["core", "app", "pinned"]
        alpine = [i for i, (depth, text) in enumerate(labels) if depth == 2 and text.startswith("alpine:3.20")]
        assert len(alpine) == 3  # needed by core and app, and pinned by digest: under each
        assert any(text.startswith("ghcr.io/example/multi:1.0") and "index" in text for _, text in labels)
        tabs = app.query_one(TabbedContent)
        await pilot.press("8")
        assert tabs.active == "package"
        text = text_of(app.query_one("#package-text"))
        assert "multi 1.0.0" in text and "ZarfPackageConfig" in text and "not verified yet" in text
        assert "matches checksums.txt" in text and "unsigned" in text
        crc = zlib.crc32(b"docker.io/library/registry")
        assert f"library/registry:2.8.1-zarf-{crc}" in text
        await pilot.press("v")
        await until(pilot, lambda: app.verify_reports, what="verification", timeout=60)
        await pilot.press("8")
        text = text_of(app.query_one("#package-text"))
        n = len(app.archives[0].package.checksums)
        assert f"checksums.txt: {n}/{n} files match" in text


async def test_manifests_view_lists_zarf_names_and_plain_archives_hide_the_tab(seed_tar):
    app = RegtuiApp([str(ZARF_FIXTURE)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.archives and app.selection is not None, what="the package to open")
        await pilot.press("down", "down")
        await pilot.press("3")
        ol = app.query_one("#pull-commands", OptionList)
        prompts = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        crc = zlib.crc32(b"docker.io/library/alpine")
        assert any(p.endswith(f"/library/alpine:3.20-zarf-{crc}") and p.startswith("ctr ") for p in prompts)
    app = RegtuiApp([str(seed_tar)], port=free_port(), measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.archives and app.selection is not None, what="the archive to open")
        tabs = app.query_one(TabbedContent)
        assert tabs.get_tab("package").display is False
