"""The package summary `regtui inspect` shows first: a plain dict for --json, and lines for people."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from regtui.oci.digests import short
from regtui.oci.zarf.package import FORMS, ZarfImage, ZarfPackage


def _image(img: ZarfImage) -> dict[str, Any]:
    return {"reference": img.name.original, "zarf_reference": img.name.rewritten,
            "digest": img.root.manifests[0].digest if img.root is not None else None,
            "in_package": img.root is not None, "components": list(img.components)}


def package_dict(pkg: ZarfPackage) -> dict[str, Any]:
    cfg = pkg.config
    m, b = cfg.metadata, cfg.build
    want, where = cfg.aggregate_checksum
    return {
        "kind": cfg.kind,
        "name": m.name,
        "version": m.version,
        "description": m.description,
        "architecture": pkg.architecture,
        "form": pkg.form,
        "form_name": FORMS.get(pkg.form, pkg.form),
        "cache_path": pkg.cache_path,
        "build": {"version": b.version, "timestamp": b.timestamp, "architecture": b.architecture, "user": b.user,
                  "terminal": b.terminal, "flavor": b.flavor, "migrations": list(b.migrations)},
        "aggregate_checksum": {"expected": want or None, "field": where or None, "found": pkg.checksums_sha256,
                               "ok": (want == pkg.checksums_sha256) if want else None},
        "checksummed_files": len(pkg.checksums),
        "signed": bool(pkg.signatures),
        "signatures": [{"file": s.file, "format": s.format, "detail": s.detail} for s in pkg.signatures],
        "components": [{"name": c.name, "description": c.description, "required": c.required,
                        "images": [_image(i) for i in pkg.component_images(c)]} for c in cfg.components],
        "images": [_image(i) for i in pkg.images],
    }


def package_lines(pkg: ZarfPackage) -> list[Text]:
    """The summary as styled lines (data never parsed as markup)."""
    d = package_dict(pkg)
    b = d["build"]
    out = [Text.assemble(("Zarf package ", "bold"), (f"{d['name']} {d['version']}".strip(), "bold cyan"),
                         f"  {d['kind']}  {d['architecture'] or '?'}  ", (d["form_name"], "dim"))]
    if d["description"]:
        out.append(Text(f"  {d['description']}"))
    if b["version"] or b["timestamp"]:
        who = "@".join(x for x in (b["user"], b["terminal"]) if x)
        out.append(Text(f"  built with Zarf {b['version'] or '?'} on {b['timestamp'] or '?'}" + (f" by {who}" if who
                                                                                                else "")))
    agg = d["aggregate_checksum"]
    if agg["ok"] is None:
        out.append(Text("  aggregate checksum: none recorded", style="yellow"))
    else:
        state = ("matches", "green") if agg["ok"] else ("DOES NOT MATCH", "bold red")
        out.append(Text.assemble(f"  aggregate checksum {agg['expected'][:12]} ({agg['field']}) ", state,
                                 f" checksums.txt ({d['checksummed_files']} files)"))
    sig = ", ".join(f"{s['format']} ({s['file']})" for s in d["signatures"]) or "unsigned"
    out.append(Text(f"  signature: {sig}" + (", present, not verified" if d["signed"] else "")))
    for c in d["components"]:
        req = {True: "required", False: "optional", None: "default"}[c["required"]]
        out.append(Text.assemble("  component ", (c["name"], "bold"), f" ({req})",
                                 f"  {c['description']}" if c["description"] else ""))
        for i in c["images"]:
            where = short(i["digest"]) if i["digest"] else Text("not in images/", style="bold red")
            out.append(Text.assemble(f"    {i['reference']}  → {i['zarf_reference']}  ", where))
    extra = [i for i in d["images"] if not i["components"]]
    for i in extra:
        out.append(Text(f"  image no component lists: {i['reference']}", style="yellow"))
    return out


def render_package(pkg: ZarfPackage, console: Console) -> None:
    for line in package_lines(pkg):
        console.print(line)
