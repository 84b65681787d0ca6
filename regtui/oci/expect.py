"""Expected manifest digests: what `--expect`, `--expect-file` and `--expect-manifest` say, parsed and checked.

A node asks for `registry:2.8.1@sha256:<upstream>`; an `Expectation` is that digest, where we were told about
it, and the upstream manifest bytes when supplied. `regtui.oci.apply` tries to serve it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from regtui.oci.digests import is_digest, sha256_digest
from regtui.oci.refs import ImageRef, parse_ref

Status = Literal["matched-as-served", "matched-by-variant", "no-match"]
MATCHED_SERVED: Status = "matched-as-served"
MATCHED_VARIANT: Status = "matched-by-variant"
NO_MATCH: Status = "no-match"


class ExpectError(ValueError):
    """Bad expectation input (reference, list file, manifest file); str() is the one-line message."""


@dataclass(frozen=True)
class Expectation:
    """A manifest digest someone will ask for, and where we were told about it."""

    digest: str
    ref: ImageRef | None  # None when only an upstream manifest file was given
    source: str  # "--expect", "images.txt:3", "--expect-manifest m.json"
    upstream: bytes | None = None  # the upstream manifest, when supplied
    upstream_source: str = ""

    @property
    def upstream_exact(self) -> bool:
        """The supplied manifest bytes are exactly the expected ones (not re-formatted by jq and the like)."""
        return self.upstream is not None and sha256_digest(self.upstream) == self.digest

    def label(self) -> str:
        return str(self.ref) if self.ref else self.digest


def parse_expectation(text: str, source: str = "--expect") -> Expectation:
    """`IMAGE@sha256:...` (any reference form docker accepts); raises ExpectError."""
    bare = text.strip()
    if re.fullmatch(r"sha(256|512):[0-9a-fA-F]*", bare):  # the digest alone: the image name is what is missing
        raise ExpectError(f"{source}: {bare!r} has no image name; write IMAGE@DIGEST, e.g. registry:2.8.1@{bare}")
    try:
        ref = parse_ref(text)
    except ValueError as e:
        raise ExpectError(f"{source}: {text.strip()!r}: {e}") from None
    if not ref.digest:
        raise ExpectError(f"{source}: {text.strip()!r} has no @sha256:... digest to expect")
    if not is_digest(ref.digest):
        raise ExpectError(f"{source}: {ref.digest!r} is not a sha256/sha512 digest we can check")
    return Expectation(ref.digest, ref, source)


def parse_expect_list(text: str, name: str) -> tuple[list[Expectation], list[str]]:
    """An air-gap image list: one reference per line; `#` comments and blank lines ignored.

    Returns (expectations, notes); lines without a digest have nothing to check and become notes.
    """
    out: list[Expectation] = []
    notes: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if len(line.split()) > 1:
            line = line.split()[0]  # "name@digest  # comment" and "name@digest extra columns"
        if "@" not in line:
            notes.append(f"{name}:{n}: {line} has no digest; nothing to check")
            continue
        out.append(parse_expectation(line, f"{name}:{n}"))
    return out, notes


def read_expect_file(path: str) -> tuple[list[Expectation], list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ExpectError(f"--expect-file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ExpectError(f"--expect-file {path}: not a UTF-8 text file of image references") from None
    return parse_expect_list(text, path)


def parse_manifest_bytes(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ExpectError(f"{where}: not JSON ({e})") from None
    if not isinstance(obj, dict) or obj.get("schemaVersion") != 2:
        raise ExpectError(f"{where}: not an image manifest or index (schemaVersion 2 expected)")
    if not isinstance(obj.get("layers"), list) and not isinstance(obj.get("manifests"), list):
        raise ExpectError(f"{where}: neither an image manifest (layers) nor an index (manifests)")
    return obj


def attach_manifest(expectations: list[Expectation], data: bytes, source: str) -> list[Expectation]:
    """Join a supplied upstream manifest to the expectation it belongs to (by digest), or add one for it.

    A file that hashes to no expected digest was likely re-formatted (`jq .`): with exactly one expectation
    it is used for that one's diff; otherwise it becomes its own expectation.
    """
    parse_manifest_bytes(data, source)
    digest = sha256_digest(data)
    out = list(expectations)
    for i, e in enumerate(out):
        if e.digest == digest:
            out[i] = Expectation(e.digest, e.ref, e.source, data, source)
            return out
    if len(out) == 1 and out[0].upstream is None:
        e = out[0]
        out[0] = Expectation(e.digest, e.ref, e.source, data, source)
        return out
    out.append(Expectation(digest, None, source, data, source))
    return out


def read_manifest_file(expectations: list[Expectation], path: str) -> list[Expectation]:
    try:
        with open(path, "rb") as f:
            data = f.read(4 << 20)
    except OSError as e:
        raise ExpectError(f"--expect-manifest {path}: {e.strerror or e}") from None
    return attach_manifest(expectations, data, f"--expect-manifest {path}")
