"""Digest grammar and hashing, per the OCI image spec (descriptor.md#digests)."""

from __future__ import annotations

import hashlib
import re

# algorithm ":" encoded, with the registered algorithms' exact encodings.
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_REGISTERED = {"sha256": re.compile(r"^[a-f0-9]{64}$"), "sha512": re.compile(r"^[a-f0-9]{128}$")}
HEX64 = re.compile(r"^[a-f0-9]{64}$")


def is_digest(value: str) -> bool:
    """True for a well-formed digest of a registered algorithm (what we can verify and serve)."""
    if not isinstance(value, str) or not _DIGEST.match(value):
        return False
    algo, _, enc = value.partition(":")
    pattern = _REGISTERED.get(algo)
    return bool(pattern and pattern.match(enc))


def is_digest_syntax(value: str) -> bool:
    """True when the general digest grammar matches, even for an algorithm we do not know."""
    return isinstance(value, str) and bool(_DIGEST.match(value))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_hasher(digest: str) -> hashlib._Hash:
    """A hashlib object for the digest's algorithm."""
    algo = digest.partition(":")[0]
    if algo not in _REGISTERED:
        raise ValueError(f"unsupported digest algorithm {algo!r}")
    return hashlib.new(algo)


def short(digest: str, n: int = 12) -> str:
    algo, _, enc = digest.partition(":")
    return f"{algo}:{enc[:n]}" if enc else digest
