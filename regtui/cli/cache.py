"""`regtui cache`: what the unpack cache holds (compressed Zarf packages, unpacked once), and pruning it."""

from __future__ import annotations

import json
import re
import time

import click

from regtui.cli.common import fail

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", text.strip())
    if not m:
        fail(f"--older-than {text!r}: give a number with s, m, h, d or w (e.g. 7d, 12h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "d"]


@click.command("cache")
@click.option("--older-than", "older_than", metavar="AGE", help="Prune packages unused for AGE (7d, 12h, 30m).")
@click.option("--all", "everything", is_flag=True, help="Prune every unpacked package.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(older_than: str | None, everything: bool, as_json: bool) -> None:
    """List the unpacked Zarf packages in the cache ($XDG_CACHE_HOME/regtui/zarf); prune with --older-than
    or --all. A package another regtui has open is skipped."""
    from regtui.oci.units import human_size
    from regtui.oci.zarf.cachedir import cache_entries, prune

    if older_than is not None or everything:
        removed, busy = prune(parse_age(older_than) if older_than is not None else None, everything)
        if as_json:
            click.echo(
                json.dumps({"removed": [e.__dict__ for e in removed], "in_use": [e.__dict__ for e in busy]}, indent=2)
            )
            return
        freed = sum(e.bytes for e in removed)
        click.echo(f"removed {len(removed)} unpacked package{'s' * (len(removed) != 1)}, {human_size(freed)} freed")
        for e in busy:
            click.echo(f"kept {e.source}: another regtui has it open")
        return
    entries = cache_entries()
    if as_json:
        click.echo(json.dumps([e.__dict__ for e in entries], indent=2))
        return
    if not entries:
        click.echo("the cache holds no unpacked package")
        return
    now = time.time()
    for e in entries:
        age = (now - e.last_used) / 86400
        gone = "" if e.source_exists else "  (source gone)"
        click.echo(f"{human_size(e.bytes):>10}  used {age:5.1f} d ago  {e.form:<7}  {e.source}{gone}")
    click.echo(
        f"{human_size(sum(e.bytes for e in entries)):>10}  in {len(entries)} package(s) under "
        f"{entries[0].path.rsplit('/', 1)[0]}"
    )
