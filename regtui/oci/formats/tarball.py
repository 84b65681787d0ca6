"""`manifest.json` archives: go-containerregistry / crane tarballs and `docker save` (legacy).

Neither stores the registry manifest, so we synthesize it (see `regtui.oci.synth`).
"""

from __future__ import annotations

from typing import Any

from regtui.oci import mediatypes as mt
from regtui.oci.digests import is_digest
from regtui.oci.errors import ArchiveError
from regtui.oci.formats.common import (
    DIGEST_ONLY_TAG,
    config_platform,
    diff_ids,
    digest_from_name,
    hash_location,
    load_config,
    make_layers,
    parse_tag_ref,
    sniff,
    stem_repository,
)
from regtui.oci.model import Descriptor, Image, Location, Problem
from regtui.oci.store import Store
from regtui.oci.synth import synthesize


def as_list(value: Any) -> list[Any]:
    """A manifest.json field that should be a list, or [] when it is anything else."""
    return value if isinstance(value, list) else []


def read_manifest_json(store: Store) -> list[dict[str, Any]]:
    entries = store.read_json("manifest.json")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ArchiveError(
            "must be a JSON list of {Config, RepoTags, Layers} objects", member="manifest.json", path=store.path
        )
    if not entries:
        raise ArchiveError("lists no images", member="manifest.json", path=store.path)
    return entries


def _str_list(entry: dict[str, Any], key: str, store: Store, i: int) -> list[str]:
    value = entry.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArchiveError(f"entry {i}: {key} must be a list of strings", member="manifest.json", path=store.path)
    return value


def image_from_entry(store: Store, entry: dict[str, Any], i: int, problems: list[Problem]) -> Image:
    """One manifest.json entry as an image with synthesized manifests."""
    config_member = entry.get("Config")
    if not isinstance(config_member, str) or not config_member:
        raise ArchiveError(f"entry {i} has no Config", member="manifest.json", path=store.path)
    layer_members = _str_list(entry, "Layers", store, i)
    repo_tags = _str_list(entry, "RepoTags", store, i)
    sources = entry.get("LayerSources")
    if not isinstance(sources, dict):
        sources = {}

    config = load_config(store, config_member, mt.DOCKER_CONFIG)
    ids = diff_ids(config)
    descs: list[Descriptor] = []
    compressions: list[str | None] = []
    locs: list[Location | None] = []
    for n, member in enumerate(layer_members):
        loc = store.locate(member)
        compression = sniff(store, loc)
        diff_id = ids[n] if n < len(ids) else None
        source = sources.get(diff_id) if diff_id else None
        desc = None
        if isinstance(source, dict) and is_digest(str(source.get("digest", ""))):
            try:
                desc = Descriptor.from_json(source)
            except ValueError as e:
                problems.append(
                    Problem(
                        "layer source",
                        f"manifest.json entry {i} LayerSources",
                        "a descriptor",
                        str(e),
                        "ignored; the layer is described from the archive",
                        "warning",
                    )
                )
        if desc is None:
            digest = digest_from_name(member)
            if compression is None and diff_id and is_digest(diff_id) and digest is None:
                digest = diff_id  # an uncompressed layer's digest is its diff_id; verify re-hashes it
            if digest is None:
                digest = hash_location(loc)
            media_type = mt.DOCKER_LAYER if compression == "gzip" else mt.oci_layer_type(compression)
            desc = Descriptor(media_type, digest, loc.size)
        descs.append(desc)
        compressions.append(compression)
        locs.append(loc)
    forms = synthesize(config.descriptor.digest, config.descriptor.size, list(zip(descs, compressions, strict=True)))
    config.descriptor = Descriptor(
        mt.DOCKER_CONFIG if forms[0].media_type == mt.DOCKER_MANIFEST else mt.OCI_CONFIG,
        config.descriptor.digest,
        config.descriptor.size,
    )
    layers = make_layers(descs, locs, config)
    for layer, c in zip(layers, compressions, strict=True):
        layer.compression = c

    repository, tags = None, []
    for text in repo_tags:
        ref = parse_tag_ref(text, problems, f"manifest.json entry {i}")
        if ref is None:
            continue
        if repository is None:
            repository = ref.name
        elif ref.name != repository:
            problems.append(
                Problem(
                    "tag",
                    f"manifest.json entry {i}",
                    f"one repository ({repository})",
                    ref.name,
                    "tags of several repositories on one image; served under the first",
                    "warning",
                )
            )
            continue
        if ref.tag and ref.tag != DIGEST_ONLY_TAG and ref.tag not in tags:
            tags.append(ref.tag)
    return Image(
        repository=repository or stem_repository(store.path),
        tags=tags,
        config=config,
        layers=layers,
        manifests=forms,
        platform=config_platform(config),
        source=f"manifest.json[{i}]",
    )


def read_tarball(store: Store, problems: list[Problem]) -> list[Image]:
    entries = read_manifest_json(store)
    return [image_from_entry(store, e, i, problems) for i, e in enumerate(entries)]


def is_legacy_docker(store: Store, entries: list[dict[str, Any]]) -> bool:
    if store.has("repositories"):
        return True
    layers = [l for e in entries for l in as_list(e.get("Layers")) if isinstance(l, str)]
    return any(l.endswith("/layer.tar") for l in layers)
