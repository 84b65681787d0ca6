"""Open an archive: detect its format, index it, and build the model. No extraction, no blob reads
beyond a few magic bytes, so opening costs the same for 10 MiB and 10 GiB."""

from __future__ import annotations

import os
from collections.abc import Callable

from regtui.oci.errors import ArchiveError
from regtui.oci.formats.common import digest_from_name, parse_tag_ref
from regtui.oci.formats.layout import read_layout
from regtui.oci.formats.tarball import as_list, image_from_entry, is_legacy_docker, read_manifest_json
from regtui.oci.model import Archive, Image, ImageIndex, Location, Problem, Root
from regtui.oci.store import DirStore, Store, open_store
from regtui.oci.zarf.package import archive_for_package
from regtui.oci.zarf.sources import UnpackProgress, compressed_form
from regtui.oci.zarf.unpack import unpack_to_cache


def open_archive(path: str | os.PathLike[str], progress: Callable[[UnpackProgress], None] | None = None) -> Archive:
    """Open any supported archive, layout folder or Zarf package; raises ArchiveError with a one-line reason.

    A compressed package (`.tar.zst`, split `.part000`) is unpacked into the cache first (`progress` hears
    about it); every other form is read in place."""
    path = os.fspath(path)
    form = compressed_form(path)
    cache_path = None
    if form:
        cache_path = unpack_to_cache(path, form, progress)
        store: Store = DirStore(cache_path)
    else:
        store = open_store(path)
    problems: list[Problem] = []
    for dup in getattr(store, "duplicates", []):
        problems.append(
            Problem(
                "member",
                dup,
                "one member of that name",
                "several",
                "the archive holds duplicate names; the last one is used, as tar does",
                "warning",
            )
        )
    if store.has("zarf.yaml"):
        kind = form or ("folder" if isinstance(store, DirStore) else "tar")
        return archive_for_package(store, path, kind, problems, cache_path)
    has_layout = store.has("index.json")
    has_manifest = store.has("manifest.json")
    if has_layout and has_manifest:
        fmt = "docker-save"
        roots, blobs = read_layout(store, problems)
        _cross_check_docker(store, roots, blobs, problems)
    elif has_layout:
        fmt = "oci-layout" if isinstance(store, DirStore) else "oci-archive"
        roots, blobs = read_layout(store, problems)
    elif has_manifest:
        entries = read_manifest_json(store)
        fmt = "docker-save-legacy" if is_legacy_docker(store, entries) else "crane-tarball"
        images = [image_from_entry(store, e, i, problems) for i, e in enumerate(entries)]
        roots, blobs = list(images), _tarball_blobs(images)
    else:
        what = "folder" if isinstance(store, DirStore) else "tar archive"
        hint = "give a docker save / crane / OCI archive, or an OCI layout folder"
        if getattr(store, "terminated", True) is False:
            hint = "the tar lacks its end marker, so it was probably cut short; copy it again"
        raise ArchiveError(
            f"is a {what} but not an image archive: it has neither manifest.json nor index.json", path=path, hint=hint
        )
    if not roots:
        raise ArchiveError(
            "holds no image that can be served",
            path=path,
            hint=problems[0].line() if problems else "the archive lists no images",
        )
    _dedupe_tags(roots, problems)
    return Archive(
        path=path, format=fmt, roots=roots, blobs=blobs, warnings=problems, fingerprints=store.fingerprints()
    )


def _tarball_blobs(images: list[Image]) -> dict[str, Location]:
    blobs: dict[str, Location] = {}
    for img in images:
        if img.config.location:
            blobs.setdefault(img.config.descriptor.digest, img.config.location)
        for layer in img.layers:
            if layer.location:
                blobs.setdefault(layer.digest, layer.location)
    return blobs


def _all_images(roots: list[Root]) -> list[Image]:
    out: list[Image] = []
    for r in roots:
        out.extend(r.images() if isinstance(r, ImageIndex) else [r])
    return out


def _cross_check_docker(store: Store, roots: list[Root], blobs: dict[str, Location], problems: list[Problem]) -> None:
    """Docker 25+ describes each image twice; some 25.0.x releases got manifest.json or the OCI side wrong."""
    entries = read_manifest_json(store)
    images = _all_images(roots)
    for i, entry in enumerate(entries):
        where = f"manifest.json[{i}]"
        config_digest = digest_from_name(str(entry.get("Config", "")))
        match = next((img for img in images if img.config.descriptor.digest == config_digest), None)
        if match is None:
            img = image_from_entry(store, entry, i, problems)
            problems.append(
                Problem(
                    "cross-check",
                    where,
                    "an OCI manifest in index.json for this config",
                    "none",
                    "index.json misses this image (Docker 25.0 save bug); serving a manifest "
                    "synthesized from manifest.json",
                    "warning",
                )
            )
            roots.append(img)
            for layer in img.layers:
                if layer.location:
                    blobs.setdefault(layer.digest, layer.location)
            if img.config.location:
                blobs.setdefault(img.config.descriptor.digest, img.config.location)
            continue
        listed = [digest_from_name(l) for l in as_list(entry.get("Layers")) if isinstance(l, str)]
        actual = [l.digest for l in match.layers]
        if listed != actual:
            if len(listed) != len(actual):
                cause = f"manifest.json lists {len(listed)} layers, the OCI manifest {len(actual)}"
            elif sorted(map(str, listed)) == sorted(actual):
                cause = "same layers in another order"
            else:
                cause = "different layers"
            problems.append(
                Problem(
                    "cross-check",
                    where,
                    "the same layers as the OCI manifest",
                    cause,
                    "Docker 25.0.x wrote inconsistent descriptions; the OCI manifest is served",
                    "warning",
                )
            )
        for text in as_list(entry.get("RepoTags")):
            ref = parse_tag_ref(str(text), problems, where)
            if ref is None or not ref.tag:
                continue
            if not match.tags:
                match.repository = ref.name  # the layout named nothing; manifest.json does
            if ref.name == match.repository and ref.tag not in match.tags:
                match.tags.append(ref.tag)


def _dedupe_tags(roots: list[Root], problems: list[Problem]) -> None:
    seen: dict[tuple[str, str], Root] = {}
    for r in roots:
        for t in list(r.tags):
            key = (r.repository, t)
            if key in seen and seen[key] is not r:
                r.tags.remove(t)
                problems.append(
                    Problem(
                        "tag",
                        f"{r.repository}:{t}",
                        "one image per tag",
                        "several",
                        "the archive tags two images alike; the first one is served",
                        "warning",
                    )
                )
            else:
                seen[key] = r
