"""A Zarf package's summary as `regtui inspect` prints it first: metadata, build, aggregate, signature and
components with each image's original and Zarf-rewritten name."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from regtui.oci.digests import short
from regtui.oci.zarf import ZarfPackage
from regtui.oci.zarf.summary import package_dict


def package_lines(pkg: ZarfPackage) -> list[Text]:
    """The summary as styled lines (data never parsed as markup)."""
    d = package_dict(pkg)
    b = d["build"]
    out = [
        Text.assemble(
            ("Zarf package ", "bold"),
            (f"{d['name']} {d['version']}".strip(), "bold cyan"),
            f"  {d['kind']}  {d['architecture'] or '?'}  ",
            (d["form_name"], "dim"),
        )
    ]
    if d["description"]:
        out.append(Text(f"  {d['description']}"))
    if b["version"] or b["timestamp"]:
        who = "@".join(x for x in (b["user"], b["terminal"]) if x)
        out.append(
            Text(f"  built with Zarf {b['version'] or '?'} on {b['timestamp'] or '?'}" + (f" by {who}" if who else ""))
        )
    agg = d["aggregate_checksum"]
    if agg["ok"] is None:
        out.append(Text("  aggregate checksum: none recorded", style="yellow"))
    else:
        state = ("matches", "green") if agg["ok"] else ("DOES NOT MATCH", "bold red")
        out.append(
            Text.assemble(
                f"  aggregate checksum {agg['expected'][:12]} ({agg['field']}) ",
                state,
                f" checksums.txt ({d['checksummed_files']} files)",
            )
        )
    sig = ", ".join(f"{s['format']} ({s['file']})" for s in d["signatures"]) or "unsigned"
    out.append(Text(f"  signature: {sig}" + (", present, not verified" if d["signed"] else "")))
    for c in d["components"]:
        req = {True: "required", False: "optional", None: "default"}[c["required"]]
        out.append(
            Text.assemble(
                "  component ", (c["name"], "bold"), f" ({req})", f"  {c['description']}" if c["description"] else ""
            )
        )
        for i in c["images"]:
            where = Text(short(i["digest"])) if i["digest"] else Text("not in images/", style="bold red")
            out.append(Text.assemble(f"    {i['reference']}  → {i['zarf_reference']}  ", where))
    for i in d["images"]:
        if not i["components"]:
            out.append(Text(f"  image no component lists: {i['reference']}", style="yellow"))
    return out


def render_package(pkg: ZarfPackage, console: Console) -> None:
    for line in package_lines(pkg):
        console.print(line)
