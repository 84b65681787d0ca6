"""Applying expectations: serve each expected digest the archive can reproduce (for the tag by default, and by
digest), through the model's `Archive.serve_manifest`; explain precisely why the others cannot be served."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from regtui.oci import mediatypes as mt
from regtui.oci.diff import (
    SERIALIZATION,
    ManifestDiff,
    descriptor_or_none,
    diff_manifests,
    index_child,
)
from regtui.oci.expect import (
    MATCHED_SERVED,
    MATCHED_VARIANT,
    NO_MATCH,
    Expectation,
    ExpectError,
    Status,
    parse_manifest_bytes,
)
from regtui.oci.model import Archive, Image, ImageIndex, Manifest
from regtui.oci.negotiate import DEFAULT_PLATFORM
from regtui.oci.refs import aliases
from regtui.oci.serializations import Variant, candidates, recovered_manifest


@dataclass
class ExpectResult:
    """What became of one expectation: served as is, recovered by a variant, or not matched (and why)."""

    expectation: Expectation
    status: Status
    explanation: str
    archive: Archive | None = None
    image: Image | None = None
    manifest: Manifest | None = None  # what is now served under the expected digest
    variant: str = ""  # Variant.slug, "upstream-manifest" or "upstream-index"
    variant_description: str = ""
    diff: ManifestDiff | None = None
    searched: int = 0  # candidate serializations tried
    seconds: float = 0.0

    @property
    def matched(self) -> bool:
        return self.status != NO_MATCH

    def image_label(self) -> str:
        return image_label(self.image) if self.image else ""

    def line(self) -> str:
        head = f"{self.expectation.label()} ({self.expectation.source})"
        if self.status == MATCHED_SERVED:
            return f"{head}: matched as served — {self.explanation}"
        if self.status == MATCHED_VARIANT:
            return f"{head}: matched by variant {self.variant} — {self.explanation}"
        return f"{head}: no match — {self.explanation}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expectation.digest,
            "reference": str(self.expectation.ref) if self.expectation.ref else None,
            "source": self.expectation.source,
            "status": self.status,
            "variant": self.variant or None,
            "variant_description": self.variant_description or None,
            "image": self.image_label() or None,
            "archive": self.archive.path if self.archive else None,
            "served": {
                "digest": self.manifest.digest,
                "mediaType": self.manifest.media_type,
                "origin": self.manifest.origin,
            }
            if self.manifest
            else None,
            "explanation": self.explanation,
            "searched": self.searched,
            "diff": self.diff.to_dict() if self.diff else None,
        }


class _Search:
    """Candidate digests per image, computed once however many expectations ask."""

    def __init__(self) -> None:
        self.cache: dict[int, dict[str, Variant]] = {}

    def of(self, image: Image) -> dict[str, Variant]:
        key = id(image)
        if key not in self.cache:
            self.cache[key] = candidates(image)
        return self.cache[key]


def _pairs(archives: list[Archive]) -> list[tuple[Archive, Image]]:
    return [(a, img) for a in archives for img in a.images()]


def _tags_of(archive: Archive, image: Image) -> list[str]:
    """The image's tags, or those of the index that holds it (multi-platform archives tag the index)."""
    for root in archive.roots:
        if root is image or (isinstance(root, ImageIndex) and any(i is image for i in root.images())):
            return list(root.tags) or list(image.tags)
    return list(image.tags)


def _rest(pairs: list[tuple[Archive, Image]], first: list[tuple[Archive, Image]]) -> list[tuple[Archive, Image]]:
    chosen = {id(i) for _, i in first}
    return first + [p for p in pairs if id(p[1]) not in chosen]


def _pick_images(pairs: list[tuple[Archive, Image]], exp: Expectation) -> tuple[list[tuple[Archive, Image]], str]:
    """Images the expectation may mean, best first, and a note when the name did not decide."""
    ref = exp.ref
    if ref is not None:
        named = [(a, i) for a, i in pairs if i.repository == ref.name]
        if not named:  # a mirror's name for it (127.0.0.1:5000/registry), or ours is host-qualified
            named = [(a, i) for a, i in pairs if ref.name in aliases(i.repository) or i.repository in aliases(ref.name)]
        tagged = [(a, i) for a, i in named if ref.tag and ref.tag in _tags_of(a, i)]
        if tagged:
            return _rest(named, tagged), ""
        if named:
            note = f"no image tagged {ref.name}:{ref.tag}; tried {ref.name}'s images" if ref.tag else ""
            return named, note
        names = sorted({i.repository for _, i in pairs})
        note = f"no image named {ref.name} in the archive (it holds {', '.join(names)}); tried every image"
        return pairs, note
    if exp.upstream is not None:
        try:
            u = json.loads(exp.upstream)
            cfg = (u.get("config") or {}).get("digest")
        except (ValueError, AttributeError):
            cfg = None
        same = [(a, i) for a, i in pairs if i.config.descriptor.digest == cfg]
        if same:
            return _rest(pairs, same), ""
    return pairs, ""


def _serve(archive: Archive, image: Image, manifest: Manifest, front: dict[int, int]) -> None:
    """Make `manifest` the form the image's tag serves by default (after those served earlier in this run)."""
    pos = front.get(id(image), 0)
    archive.serve_manifest(image, manifest, pos)
    front[id(image)] = pos + 1


def _what_is(archive: Archive, image: Image, digest: str) -> str | None:
    """When the digest names something other than a manifest of this image, what it names."""
    label = image_label(image)
    if image.config.descriptor.digest == digest:
        return (
            f"{digest} is the config digest of {label} (the image ID `docker images` shows), not a "
            f"manifest digest; use the repo digest (`docker inspect -f '{{{{.RepoDigests}}}}'`)"
        )
    for n, layer in enumerate(image.layers):
        if layer.digest == digest:
            return f"{digest} is the blob digest of layer {n} of {label}, not a manifest digest"
        if layer.diff_id == digest:
            return f"{digest} is the diff_id (uncompressed digest) of layer {n} of {label}, not a manifest digest"
    return None


def _match_one(
    archive: Archive, image: Image, exp: Expectation, search: _Search, front: dict[int, int]
) -> ExpectResult | None:
    digest = exp.digest
    # 1. already served (by this image or anything else in the archive)
    if digest in archive.manifests and (
        archive.roots_by_manifest.get(digest) is image or any(m.digest == digest for m in image.manifests)
    ):
        m = archive.manifests[digest]
        was_default = image.manifests and image.manifests[0].digest == digest
        _serve(archive, image, m, front)
        how = "the default form" if was_default else "now the default form for its tag"
        return ExpectResult(
            exp,
            MATCHED_SERVED,
            f"{image_label(image)} serves {digest} ({m.media_type}, {m.origin}); {how}",
            archive,
            image,
            m,
            m.origin,
        )
    # 2. one of the serializations of the same content
    table = search.of(image)
    v = table.get(digest)
    if v is not None:
        m = recovered_manifest(image, v)
        _serve(archive, image, m, front)
        return ExpectResult(
            exp,
            MATCHED_VARIANT,
            f"{image_label(image)} now serves {digest} for its tag and by digest: {v.describe()}",
            archive,
            image,
            m,
            v.slug,
            v.describe(),
            searched=len(table),
        )
    return None


def image_label(image: Image) -> str:
    return f"{image.repository}:{image.tags[0]}" if image.tags else image.repository


def _with_upstream(
    archive: Archive, image: Image, exp: Expectation, search: _Search, front: dict[int, int]
) -> ExpectResult:
    """No serialization matched; the user gave the upstream manifest: serve it if it is ours, else diff."""
    data = exp.upstream
    assert data is not None
    searched = len(search.of(image))
    obj = parse_manifest_bytes(data, exp.upstream_source)
    if isinstance(obj.get("manifests"), list) and not isinstance(obj.get("layers"), list):
        return _with_upstream_index(archive, image, exp, obj, search, front)
    diff = diff_manifests(image, data, archive.blobs)
    exact = exp.upstream_exact
    if diff.verdict == SERIALIZATION and exact and not diff.missing:
        mtype = str(
            obj.get("mediaType") or (mt.DOCKER_MANIFEST if mt.is_docker(diff.upstream_media_type) else mt.OCI_MANIFEST)
        )
        m = Manifest(mtype, data, exp.digest, "recovered:upstream-manifest")
        _serve(archive, image, m, front)
        return ExpectResult(
            exp,
            MATCHED_VARIANT,
            f"{image_label(image)} now serves the supplied upstream manifest ({exp.upstream_source}): "
            f"it references exactly this archive's blobs",
            archive,
            image,
            m,
            "upstream-manifest",
            "the supplied upstream manifest bytes",
            diff,
            searched,
        )
    text = diff.summary
    if not exact:
        text = (
            f"{exp.upstream_source} hashes to {diff.upstream_digest}, not {exp.digest} "
            f"(re-formatted after download?); compared its fields: " + text
        )
    return ExpectResult(exp, NO_MATCH, f"{diff.verdict}: {text}", archive, image, None, "", "", diff, searched)


def _with_upstream_index(
    archive: Archive, image: Image, exp: Expectation, index: dict[str, Any], search: _Search, front: dict[int, int]
) -> ExpectResult:
    child = index_child(index, image.platform)
    searched = len(search.of(image))
    if child is None:
        children = map(descriptor_or_none, index.get("manifests") or [])
        plats = ", ".join(str(d.platform) for d in children if d and d.platform)
        return ExpectResult(
            exp,
            NO_MATCH,
            f"{exp.digest} is a multi-platform index with no "
            f"{image.platform or DEFAULT_PLATFORM} child (it has {plats or 'none'})",
            archive,
            image,
            searched=searched,
        )
    sub = _match_one(archive, image, Expectation(child.digest, exp.ref, exp.source), search, front)
    if sub is None:
        return ExpectResult(
            exp,
            NO_MATCH,
            f"{exp.digest} is a multi-platform index; its {child.platform} child "
            f"{child.digest} matches none of {searched} serializations of this image. "
            f"Fetch that child manifest (regtui diff ARCHIVE REGISTRY/REPO@{child.digest}) to see "
            f"why",
            archive,
            image,
            searched=searched,
        )
    if not exp.upstream_exact:
        return ExpectResult(
            exp,
            NO_MATCH,
            f"{exp.upstream_source} does not hash to {exp.digest}; its "
            f"{child.platform} child {child.digest} is served ({sub.variant}), but the index "
            f"bytes are unknown",
            archive,
            image,
            sub.manifest,
            sub.variant,
            searched=searched,
        )
    # A sparse index: clients pick their platform's child by digest; only ours is here. It becomes an untagged
    # root without children (the child already is a root), so whatever serves the roots serves it by digest.
    assert exp.upstream is not None
    m = Manifest(str(index.get("mediaType") or mt.OCI_INDEX), exp.upstream, exp.digest, "recovered:upstream-index")
    node = ImageIndex(
        image.repository,
        [],
        m,
        [d for d in map(descriptor_or_none, index["manifests"]) if d],
        [],
        source=f"{exp.upstream_source} (sparse: its {child.platform} child is served by digest)",
    )
    if exp.digest not in archive.manifests:
        archive.add_root(node)
    return ExpectResult(
        exp,
        MATCHED_VARIANT,
        f"{exp.digest} is a multi-platform index; serving it by digest, and its "
        f"{child.platform} child {child.digest} as {sub.variant} "
        f"(the other platforms' children are not in the archive)",
        archive,
        image,
        m,
        "upstream-index",
        f"supplied index; child: {sub.variant_description or sub.variant}",
        searched=searched,
    )


def _explain(archive: Archive, image: Image, exp: Expectation, searched: int) -> str:
    known = _what_is(archive, image, exp.digest)
    if known:
        return known
    if exp.digest in archive.manifests:
        return (
            f"{exp.digest} is served by this archive, but for "
            f"{getattr(archive.roots_by_manifest.get(exp.digest), 'repository', '?')}, not this image"
        )
    label = image_label(image)
    stored = [m for m in image.manifests if m.origin == "archive"]
    uncompressed = [
        n
        for n, l in enumerate(image.layers)
        if (l.compression or mt.layer_compression(l.descriptor.media_type)) is None
    ]
    if uncompressed and len(uncompressed) == len(image.layers):
        return (
            f"{label}'s layers are stored uncompressed (as `docker save` writes them), but a registry "
            f"manifest lists compressed blobs whose digests this archive cannot know; none of {searched} "
            f"serializations match. Export the image with its compressed layers (crane pull, skopeo copy to "
            f"oci-archive) or give the upstream manifest to see the difference"
        )
    where = "the archive stores its own manifest bytes, and " if stored else ""
    return (
        f"{where}none of {searched} serializations of {label} (Docker v2 / OCI types, with or without "
        f"mediaType, compact / 2- / 3- / 4-space / tab indent, both key orders, trailing newline or not, "
        f"foreign layer types) hash to {exp.digest}: the upstream manifest references other blobs "
        f"(re-compressed layers, another build or platform) or the digest names a multi-platform index. "
        f"Give the upstream manifest (--expect-manifest FILE, or `regtui diff ARCHIVE REGISTRY/REPO:TAG`) "
        f"to see which"
    )


def apply_to_archives(archives: list[Archive], expectations: list[Expectation]) -> list[ExpectResult]:
    """Apply every expectation across these archives; one result per expectation, in order."""
    pairs = _pairs(archives)
    search = _Search()
    front: dict[int, int] = {}
    results: list[ExpectResult] = []
    for exp in expectations:
        t0 = time.perf_counter()
        result = _apply_one(pairs, exp, search, front)
        result.seconds = time.perf_counter() - t0
        results.append(result)
    return results


def _apply_one(
    pairs: list[tuple[Archive, Image]], exp: Expectation, search: _Search, front: dict[int, int]
) -> ExpectResult:
    if not pairs:
        return ExpectResult(exp, NO_MATCH, "the archive holds no image")
    chosen, note = _pick_images(pairs, exp)
    # An index digest the archive stores (multi-platform layouts) is served as is.
    for a, _ in pairs:
        root = a.roots_by_manifest.get(exp.digest)
        if isinstance(root, ImageIndex):
            m = a.manifests[exp.digest]
            return ExpectResult(
                exp,
                MATCHED_SERVED,
                f"the archive stores index {exp.digest} ({root.repository}); served as is",
                a,
                None,
                m,
                m.origin,
            )
    for a, img in chosen:
        result = _match_one(a, img, exp, search, front)
        if result is not None:
            if note:
                result.explanation = f"{result.explanation} ({note})"
            return result
    a, img = chosen[0]
    if exp.upstream is not None:
        try:
            result = _with_upstream(a, img, exp, search, front)
        except ExpectError as e:
            return ExpectResult(exp, NO_MATCH, str(e), a, img, searched=len(search.of(img)))
    else:
        searched = sum(len(search.of(i)) for _, i in chosen)
        for other_a, other in chosen:
            known = _what_is(other_a, other, exp.digest)
            if known:
                a, img = other_a, other
                break
        result = ExpectResult(exp, NO_MATCH, _explain(a, img, exp, searched), a, img, searched=searched)
    if note:
        result.explanation = f"{result.explanation} ({note})"
    return result


def apply_expectations(archive: Archive, expectations: list[Expectation]) -> list[ExpectResult]:
    """Serve every expected digest this archive can reproduce (tag default + by digest); explain the rest."""
    return apply_to_archives([archive], expectations)
