"""Package checks on top of the image checks: checksums.txt, the aggregate, components against images/,
and the signature's presence.

Each file is read once: a blob that `checksums.txt` lists under its own digest is hashed by the blob checks,
and its result is reused here; every other listed file is streamed here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from regtui.oci.errors import ArchiveError
from regtui.oci.hashing import HashResult, hash_blob
from regtui.oci.model import Archive, Location, Problem
from regtui.oci.zarf.checksums import CHECKSUMS, UNLISTED, Entry
from regtui.oci.zarf.package import ZarfPackage

TAMPERED = "the package was modified or damaged after `zarf package create`"


def _blob_digest(entry: Entry) -> str | None:
    prefix = "images/blobs/sha256/"
    if entry.path.startswith(prefix) and entry.path[len(prefix) :] == entry.sha256:
        return f"sha256:{entry.sha256}"
    return None


def package_files(archive: Archive) -> list[tuple[Entry, Location | None]]:
    """checksums.txt entries verification must stream itself (not covered by the blob checks)."""
    pkg: ZarfPackage = archive.package
    out: list[tuple[Entry, Location | None]] = []
    for e in pkg.checksums:
        digest = _blob_digest(e)
        if digest and digest in archive.blobs:
            continue
        out.append((e, pkg.store.locate(e.path) if pkg.store.has(e.path) else None))
    return out


def check_package(
    archive: Archive,
    report: Any,
    results: dict[str, HashResult],
    files: list[tuple[Entry, Location | None]],
    tick: Callable[[int], None],
    cancel: threading.Event | None,
) -> None:
    """Add the package's checks and problems to `report` (a VerifyReport)."""
    pkg: ZarfPackage = archive.package
    _aggregate(pkg, report)
    streamed = {e.path for e, _ in files}
    for e in pkg.checksums:
        if e.path in streamed:
            continue
        res = results.get(f"sha256:{e.sha256}")
        found = res.digest.removeprefix("sha256:") if res else "not hashed"
        _entry(report, e, found, res.size if res else 0)
    for e, loc in files:
        if loc is None:
            report.add(
                "checksums",
                e.path,
                Problem(
                    "checksums",
                    e.path,
                    "the file checksums.txt lists",
                    "missing",
                    f"the package is incomplete; {TAMPERED}",
                ),
            )
            continue
        res = hash_blob(loc, progress=tick, cancel=cancel)
        if res.size < loc.size:
            report.add(
                "checksums",
                e.path,
                Problem(
                    "checksums",
                    e.path,
                    f"{loc.size} bytes",
                    f"{res.size} bytes",
                    "the file ended early; it was truncated or changed on disk",
                ),
            )
            continue
        _entry(report, e, res.digest.removeprefix("sha256:"), res.size)
    _unlisted(pkg, report)
    _components(pkg, report)
    _signature(pkg, report)


def _entry(report: Any, e: Entry, found: str, size: int) -> None:
    if found == e.sha256:
        report.add("checksums", e.path, None, f"sha256 ok, {size} bytes")
    else:
        report.add(
            "checksums",
            e.path,
            Problem(
                "checksums",
                f"{e.path} (checksums.txt line {e.line})",
                e.sha256,
                found,
                f"the file's bytes changed: {TAMPERED}",
            ),
        )


def _aggregate(pkg: ZarfPackage, report: Any) -> None:
    want, where = pkg.config.aggregate_checksum
    if not want:
        report.add(
            "aggregate",
            CHECKSUMS,
            Problem(
                "aggregate",
                CHECKSUMS,
                "an aggregate checksum in zarf.yaml",
                "none",
                "packages from old Zarf versions record none; the files are still checked one by one",
                "warning",
            ),
        )
    elif want != pkg.checksums_sha256:
        report.add(
            "aggregate",
            CHECKSUMS,
            Problem(
                "aggregate",
                f"sha256 of {CHECKSUMS} vs zarf.yaml {where}",
                want,
                pkg.checksums_sha256,
                f"checksums.txt does not belong to this zarf.yaml: {TAMPERED}",
            ),
        )
    else:
        report.add("aggregate", CHECKSUMS, None, f"sha256 of {CHECKSUMS} matches {where}")


def _unlisted(pkg: ZarfPackage, report: Any) -> None:
    listed = {e.path for e in pkg.checksums}
    for name in sorted(pkg.store.names()):
        if name in listed or name in UNLISTED:
            continue
        try:
            pkg.store.locate(name)
        except ArchiveError:
            continue  # a folder entry, not a file
        report.add(
            "checksums",
            name,
            Problem(
                "checksums",
                name,
                "every file listed in checksums.txt",
                "a file it does not list",
                f"a file was added: {TAMPERED}",
            ),
        )


def _components(pkg: ZarfPackage, report: Any) -> None:
    for img in pkg.images:
        ref = img.name.original
        if img.root is None:
            for comp in img.components:
                report.add(
                    "components",
                    ref,
                    Problem(
                        "components",
                        f"component {comp}",
                        f"{ref} in images/index.json",
                        "not there",
                        "the package lacks an image a component needs: zarf deploy would fail; "
                        "the package is incomplete",
                    ),
                )
        elif not img.components:
            report.add(
                "components",
                ref,
                Problem(
                    "components",
                    "images/index.json",
                    f"{ref} listed by a component",
                    "listed by none",
                    "images/ holds an image no component needs: added after the package was built",
                    "warning",
                ),
            )
        else:
            report.add("components", ref, None, f"needed by {', '.join(img.components)}")


def _signature(pkg: ZarfPackage, report: Any) -> None:
    if pkg.signatures:
        for s in pkg.signatures:
            detail = f"{s.format}{f' ({s.detail})' if s.detail else ''}; present, not verified"
            report.add("signature", s.file, None, detail)
    else:
        report.add("signature", "package", None, "unsigned (no zarf.bundle.sig or zarf.yaml.sig)")
