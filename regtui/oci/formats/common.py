"""Pieces every format reader shares: configs, layers with their history, names from tags."""

from __future__ import annotations

import hashlib
import os
import re

from regtui.oci import mediatypes as mt
from regtui.oci.digests import HEX64, is_digest, sha256_digest
from regtui.oci.errors import ArchiveError
from regtui.oci.model import Config, Descriptor, History, Layer, Location, Platform, Problem, history_list
from regtui.oci.refs import ImageRef, is_name, is_tag, parse_ref
from regtui.oci.store import Store, parse_json

DIGEST_ONLY_TAG = "i-was-a-digest"  # go-containerregistry's placeholder for images saved by digest


def load_config(store: Store, member: str, media_type: str, claimed: str | None = None) -> Config:
    data = store.read(member)
    obj = parse_json(data, member=member, path=store.path)
    if not isinstance(obj, dict):
        raise ArchiveError("image config is not a JSON object", member=member, path=store.path)
    digest = claimed if claimed and is_digest(claimed) else sha256_digest(data)
    return Config(Descriptor(media_type, digest, len(data)), data, obj, store.locate(member))


def diff_ids(config: Config) -> list[str]:
    rootfs = config.json.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [str(d) for d in ids] if isinstance(ids, list) else []


def layer_history(config: Config) -> list[History | None]:
    """History entries of the non-empty layers, in order (one per layer the config describes)."""
    out: list[History | None] = []
    for h in history_list(config.json):
        if isinstance(h, dict) and not h.get("empty_layer"):
            out.append(History(str(h.get("created", "")), str(h.get("created_by", "")), str(h.get("comment", ""))))
    return out


def config_platform(config: Config) -> Platform | None:
    j = config.json
    if not j.get("os") and not j.get("architecture"):
        return None
    return Platform(
        str(j.get("os", "")),
        str(j.get("architecture", "")),
        str(j.get("variant", "") or ""),
        str(j.get("os.version", "") or ""),
    )


def make_layers(descs: list[Descriptor], locs: list[Location | None], config: Config) -> list[Layer]:
    ids = diff_ids(config)
    hist = layer_history(config)
    layers = []
    for i, (d, loc) in enumerate(zip(descs, locs, strict=False)):
        layers.append(
            Layer(
                d,
                loc,
                ids[i] if i < len(ids) else None,
                hist[i] if i < len(hist) else None,
                mt.layer_compression(d.media_type),
            )
        )
    return layers


def sniff(store: Store, loc: Location) -> str | None:
    fd = os.open(loc.path, os.O_RDONLY)
    try:
        head = os.pread(fd, 4, loc.offset)
    finally:
        os.close(fd)
    return mt.sniff_compression(head)


def hash_location(loc: Location) -> str:
    """sha256 of a blob; only for members whose name does not tell their digest."""
    h = hashlib.sha256()
    fd = os.open(loc.path, os.O_RDONLY)
    try:
        pos, end = loc.offset, loc.offset + loc.size
        while pos < end:
            chunk = os.pread(fd, min(1 << 20, end - pos), pos)
            if not chunk:
                break
            h.update(chunk)
            pos += len(chunk)
    finally:
        os.close(fd)
    return "sha256:" + h.hexdigest()


_HEX_NAME = re.compile(r"(?:^|/)(?:sha256[:/])?([a-f0-9]{64})(?:\.[a-z0-9.]+)?$")


def digest_from_name(member: str) -> str | None:
    m = _HEX_NAME.search(member)
    return f"sha256:{m.group(1)}" if m and HEX64.match(m.group(1)) else None


def stem_repository(path: str) -> str:
    """A repository name for untagged images: the archive's file name, made valid."""
    base = os.path.basename(os.path.normpath(path)).lower()
    for ext in (".tar.gz", ".tgz", ".tar", ".oci", ".docker"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    base = re.sub(r"[^a-z0-9._-]+", "-", base).strip("._-")
    base = re.sub(r"[._-]{2,}", "-", base)
    return base if base and is_name(base) else "image"


def parse_tag_ref(text: str, problems: list[Problem], where: str) -> ImageRef | None:
    try:
        ref = parse_ref(text)
    except ValueError as e:
        problems.append(Problem("tag", where, "a valid image reference", repr(text), str(e), "warning"))
        return None
    return ref


def ref_name_annotation(value: str, problems: list[Problem], where: str) -> tuple[str | None, str | None]:
    """(repository, tag) from `org.opencontainers.image.ref.name`: a bare tag or a full `name:tag`."""
    if is_tag(value) and "/" not in value:
        return None, value
    ref = parse_tag_ref(value, problems, where)
    if ref is None:
        return None, None
    return ref.name, ref.tag
