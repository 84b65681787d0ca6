"""`checksums.txt` (`<sha256> <relative path>` per line) and the signature files beside it.

Parsed strictly: a line that is not 64 hex digits, one space and a path inside the package makes the package
refused at open, since every later check trusts these paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from regtui.oci.errors import ArchiveError
from regtui.oci.store import Store

CHECKSUMS = "checksums.txt"
ZARF_YAML = "zarf.yaml"
LEGACY_SIGNATURE = "zarf.yaml.sig"  # cosign key-pair signature of zarf.yaml (Zarf before v0.71)
BUNDLE_SIGNATURE = "zarf.bundle.sig"  # Sigstore bundle (Zarf v0.71 and later)
UNLISTED = (ZARF_YAML, CHECKSUMS, LEGACY_SIGNATURE, BUNDLE_SIGNATURE)  # never in checksums.txt
MAX_CHECKSUMS = 64 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Entry:
    sha256: str  # hex
    path: str
    line: int


@dataclass(frozen=True)
class Signature:
    file: str
    format: str  # what kind of signature, in words
    detail: str = ""  # e.g. the bundle's media type


def parse_checksums(data: bytes, path: str) -> list[Entry]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArchiveError(
            f"is not UTF-8 text (byte {e.start})", member=CHECKSUMS, path=path, hint="the package is damaged"
        ) from None
    entries: list[Entry] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        hexd, sep, name = line.partition(" ")
        if not sep or len(hexd) != 64 or not _HEX.issuperset(hexd) or not name:
            raise ArchiveError(
                f"line {n} is not '<sha256> <path>': {line[:80]!r}",
                member=CHECKSUMS,
                path=path,
                hint="the package is damaged or was edited",
            )
        parts = name.split("/")
        if name.startswith("/") or ".." in parts or "\\" in name or "\0" in name:
            raise ArchiveError(
                f"line {n} names {name[:80]!r}, a path outside the package; refused",
                member=CHECKSUMS,
                path=path,
                hint="the package is malformed or hostile",
            )
        clean = "/".join(p for p in parts if p not in ("", "."))
        if clean in seen:
            raise ArchiveError(
                f"line {n} lists {clean!r} a second time",
                member=CHECKSUMS,
                path=path,
                hint="the package is damaged or was edited",
            )
        seen.add(clean)
        entries.append(Entry(hexd, clean, n))
    return entries


def signatures(store: Store) -> list[Signature]:
    found = []
    if store.has(BUNDLE_SIGNATURE):
        detail = ""
        try:
            obj = json.loads(store.read(BUNDLE_SIGNATURE, 1 << 20))
            if isinstance(obj, dict) and isinstance(obj.get("mediaType"), str):
                detail = obj["mediaType"][:120]
        except (ArchiveError, ValueError):
            detail = "not a JSON bundle"
        found.append(Signature(BUNDLE_SIGNATURE, "Sigstore bundle", detail))
    if store.has(LEGACY_SIGNATURE):
        found.append(Signature(LEGACY_SIGNATURE, "cosign signature of zarf.yaml (legacy, key pair)"))
    return found
