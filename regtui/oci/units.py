"""Byte counts for people: the one size format of the CLI, the TUI and push progress."""

from __future__ import annotations


def human_size(n: float | None) -> str:
    """`512 B`, `1.5 KiB`, … `2.0 TiB`; `—` for an unknown (None or negative) size."""
    if n is None or n < 0:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
