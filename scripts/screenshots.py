"""Drive the real regtui app headless and save a picture of each main view (see scripts/screenshots).

SVGs come from Textual's own screenshot; PNGs from rsvg-convert after pointing the SVG's web font at an
installed monospace font (and keeping its spaces), since rsvg cannot fetch web fonts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from regtui.tui.app import RegtuiApp
from tests.helpers.support import build_multiarch_layout
from tests.helpers.tui_support import flip_byte_in_layer, until

SIZE = (150, 42)
SEED = Path(os.environ.get("REGTUI_SEED", ROOT.parent / "shared" / "fixtures" / "seed-image.tar"))
ZARF = Path(os.environ.get("REGTUI_ZARF", SEED.parent / "zarf-package-test-uncompressed-amd64-0.0.1.tar"))


def free_port(preferred: int = 5000) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise SystemExit("no free port")


def to_png(svg: Path, font: str) -> Path:
    text = svg.read_text()
    text = text.replace('"Fira Code"', f'"{font}"').replace("Fira Code, monospace", f"{font}, monospace")
    text = re.sub(r"<svg ", '<svg xml:space="preserve" ', text, count=1)
    fixed = svg.with_suffix(".font.svg")
    fixed.write_text(text)
    png = svg.with_suffix(".png")
    try:
        subprocess.run(["rsvg-convert", "-o", str(png), str(fixed)], check=True)
    finally:
        fixed.unlink()
    return png


async def main_views(out: Path, archive: str, skopeo: str, work: Path) -> list[Path]:
    port = free_port()
    app = RegtuiApp([archive], "127.0.0.1", port)
    shots: list[Path] = []

    async def shot(name: str, key: str | None = None) -> None:
        if key:
            await pilot.press(key)
        await pilot.pause(0.3)
        shots.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(out))))

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.selection is not None, what="the archive to open")
        await until(pilot, lambda: all(v is not None for v in app.layer_facts.values()), what="layer sizes")
        await shot("layers")
        await shot("config", "2")
        await shot("manifests", "3")
        await pilot.press("s")
        await until(pilot, lambda: app.live.server.state == "serving", what="the server")
        ref = f"127.0.0.1:{port}/registry:2.8.1"
        pull = await asyncio.create_subprocess_exec(
            skopeo,
            "copy",
            "-q",
            "--src-tls-verify=false",
            f"docker://{ref}",
            f"oci:{work / 'pulled'}:x",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await pull.wait()
        missing = await asyncio.create_subprocess_exec(
            skopeo,
            "inspect",
            "--tls-verify=false",
            f"docker://127.0.0.1:{port}/registry:2.8.2",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await missing.wait()
        await until(pilot, lambda: any(p.finished for p in app.live.pulls.values()), what="the pull")
        await pilot.pause(0.5)
        await shot("server", "5")
        await shot("requests", "6")
        await shot("pulls", "7")
        await shot("help", "question_mark")
        await pilot.press("escape", "q")
    return shots


async def verified_view(out: Path, archive: Path, name: str, key: str | None = None) -> Path:
    """The archive verified (v), then the view `key` selects (the Verify view when None)."""
    app = RegtuiApp([str(archive)], "127.0.0.1", 5000, measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.selection is not None, what="the archive to open")
        await pilot.press("v")
        await until(pilot, lambda: app.verify_reports or app.verify_errors, what="verification")
        if key:
            await pilot.press(key)
        await pilot.pause(0.3)
        return Path(app.save_screenshot(filename=f"{name}.svg", path=str(out)))


async def multiarch_view(out: Path, layout: Path) -> Path:
    app = RegtuiApp([str(layout)], "127.0.0.1", 5000, measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.selection is not None, what="the layout to open")
        tree = app.query_one("#images")
        arm = next(n for n in tree._walk() if str(n.label).startswith("linux/arm64"))
        tree.move_cursor(arm)
        await pilot.pause(0.2)
        await pilot.press("3")
        await pilot.pause(0.3)
        return Path(app.save_screenshot(filename="multiarch.svg", path=str(out)))


async def files_view(out: Path, archive: str) -> Path:
    """The Files view as of layer 3 of the seed image, only its changes, a file's versions in the detail pane."""
    app = RegtuiApp([archive], "127.0.0.1", 5000, measure=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.selection is not None, what="the archive to open")
        await pilot.press("9")
        view = app.query_one("#files-view")
        await until(pilot, lambda: view.view is not None, what="the files index")
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket", "c")
        await until(pilot, lambda: view.view is not None and view.view.changes_only, what="the layer's changes")
        await pilot.press("l", "j")
        await pilot.pause(0.3)
        return Path(app.save_screenshot(filename="files.svg", path=str(out)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "screenshots"))
    ap.add_argument("archive", nargs="?", default=str(SEED))
    args = ap.parse_args()
    skopeo = shutil.which("skopeo")
    if not skopeo or not shutil.which("rsvg-convert"):
        raise SystemExit("screenshots: needs skopeo and rsvg-convert (./scripts/setup installs them)")
    if not Path(args.archive).exists():
        raise SystemExit(f"screenshots: {args.archive} not found")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    font = (
        subprocess.run(["fc-match", "-f", "%{family[0]}", "monospace"], capture_output=True, text=True).stdout.strip()
        or "DejaVu Sans Mono"
    )
    os.environ.setdefault("TZ", "UTC")
    time.tzset()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        layout = work / "multiarch"
        subprocess.run(
            [skopeo, "copy", "-q", f"docker-archive:{args.archive}", f"oci:{layout}:registry:2.8.1"], check=True
        )
        build_multiarch_layout(layout, tag="registry:2.8.1")
        shots = asyncio.run(main_views(out, args.archive, skopeo, work))
        shots.append(asyncio.run(multiarch_view(out, layout)))
        shots.append(asyncio.run(files_view(out, args.archive)))
        corrupted = work / "seed-image-corrupted.tar"
        flip_byte_in_layer(args.archive, corrupted)
        # A copy with one flipped byte: the mismatch, in red, with its likely cause.
        shots.append(asyncio.run(verified_view(out, corrupted, "verify")))
        if ZARF.exists():  # the real Zarf-built package: metadata, components with Zarf names, checksums
            shots.append(asyncio.run(verified_view(out, ZARF, "package", "8")))
    for svg in shots:
        print(f"{svg}  {to_png(svg, font)}")


if __name__ == "__main__":
    main()
