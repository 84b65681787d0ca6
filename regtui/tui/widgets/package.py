"""The Package view: a Zarf package's metadata, build, components with their images (original and
Zarf-rewritten names), and the state of its checksums and signature."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from regtui.oci.model import Archive
from regtui.oci.zarf.summary import package_dict

if TYPE_CHECKING:
    from regtui.oci.verify import VerifyReport
    from regtui.oci.zarf.sources import UnpackProgress


def _checks_text(report: VerifyReport | None) -> Text:
    t = Text()
    if report is None:
        t.append("checksums not verified yet: press v", style="dim")
        return t
    checks = [c for c in report.checks if c.check in ("checksums", "aggregate", "components")]
    bad = [p for p in report.errors() if p.check in ("checksums", "aggregate", "components")]
    ok = sum(c.ok for c in checks if c.check == "checksums")
    total = sum(1 for c in checks if c.check == "checksums")
    style = "bold green" if not bad else "bold red"
    t.append(f"{'✓' if not bad else '✗'} checksums.txt: {ok}/{total} files match", style=style)
    t.append("  (cached result)\n" if report.cached else "\n", style="dim")
    for p in bad:
        t.append(f"  ✗ {p.line()}\n", style="red")
    return t


class PackageView(VerticalScroll):
    def compose(self):
        yield Static(id="package-text")

    def show(self, archive: Archive | None, report: VerifyReport | None = None) -> None:
        box = self.query_one("#package-text", Static)
        pkg = archive.package if archive is not None else None
        if pkg is None:
            box.update(Text("The selected archive is not a Zarf package.", style="dim"))
            return
        d = package_dict(pkg)
        head = Text()
        head.append(f"{d['name']} {d['version']}".strip(), style="bold cyan")
        head.append(f" · {d['kind']} · {d['architecture'] or '?'} · {d['form_name']}\n", style="dim")
        if d["description"]:
            head.append(f"{d['description']}\n")
        facts = Table(show_header=False, box=None, padding=(0, 1))
        facts.add_column(style="bold cyan", no_wrap=True)
        facts.add_column(overflow="fold")
        b = d["build"]
        facts.add_row("built with", f"Zarf {b['version'] or '?'} on {b['timestamp'] or '?'}")
        facts.add_row("built by", "@".join(x for x in (b["user"], b["terminal"]) if x) or "—")
        if b["migrations"]:
            facts.add_row("migrations", ", ".join(b["migrations"]))
        if d["cache_path"]:
            facts.add_row("unpacked in", d["cache_path"])
        agg = d["aggregate_checksum"]
        if agg["ok"] is None:
            facts.add_row("aggregate", Text("none recorded (an old package)", style="yellow"))
        else:
            facts.add_row(
                "aggregate",
                Text.assemble(
                    (f"{agg['expected'][:16]}… ({agg['field']}) ", ""),
                    ("matches checksums.txt", "green") if agg["ok"] else ("DOES NOT MATCH checksums.txt", "bold red"),
                ),
            )
        sigs = ", ".join(f"{s['format']} ({s['file']}), not verified" for s in d["signatures"])
        facts.add_row("signature", Text(sigs or "unsigned", style="" if sigs else "yellow"))
        comps = Table(title="components", title_justify="left", title_style="bold", box=None, padding=(0, 1))
        for col in ("component", "required", "image", "Zarf cluster name", "in package"):
            comps.add_column(col, overflow="fold")
        for c in d["components"]:
            req = {True: "yes", False: "no", None: "default"}[c["required"]]
            if not c["images"]:
                comps.add_row(Text(c["name"], style="bold"), req, Text("no images", style="dim"), "", "")
            for i, img in enumerate(c["images"]):
                here = Text("✓", style="green") if img["in_package"] else Text("✗ missing", style="bold red")
                comps.add_row(
                    Text(c["name"], style="bold") if i == 0 else "",
                    req if i == 0 else "",
                    Text(img["reference"]),
                    Text(img["zarf_reference"], style="cyan"),
                    here,
                )
        extra = [i for i in d["images"] if not i["components"]]
        tail = Text()
        for i in extra:
            tail.append(f"images/ holds {i['reference']}, which no component lists\n", style="yellow")
        box.update(Group(head, facts, Text(""), _checks_text(report), comps, tail))


def unpack_progress(
    path: str, call: Callable[..., object], set_loading: Callable[[str], None]
) -> Callable[[UnpackProgress], None]:
    """A progress callback for opening a compressed package in a worker thread: the status line shows a bar,
    bytes and speed (`call` is App.call_from_thread, at most ten times a second)."""
    import os
    import time

    from regtui.oci.units import human_size

    name = os.path.basename(path)
    last = [0.0]

    def progress(p: UnpackProgress) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and p.read < p.total:
            return
        last[0] = now
        if p.waiting:
            call(set_loading, f"{name}: another regtui is unpacking it; waiting…")
            return
        frac = p.read / p.total if p.total else 1.0
        bar = "━" * int(frac * 20) + "─" * (20 - int(frac * 20))
        call(
            set_loading,
            f"unpacking {name} {bar} {frac:4.0%}  {human_size(p.read)} of {human_size(p.total)}"
            f"  {human_size(int(p.speed))}/s",
        )

    return progress
