"""OCI image layouts (folder or tar) and Docker 25+ `docker save`, whose tar holds a layout.

Manifests here are stored: we serve their exact bytes, keyed by the digest of those bytes.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from regtui.oci import mediatypes as mt
from regtui.oci.digests import is_digest, sha256_digest
from regtui.oci.errors import ArchiveError
from regtui.oci.formats.common import (
    config_platform,
    load_config,
    make_layers,
    parse_tag_ref,
    ref_name_annotation,
    stem_repository,
)
from regtui.oci.model import Descriptor, Image, ImageIndex, Location, Manifest, Problem, Root
from regtui.oci.store import Store, parse_json

MAX_DEPTH = 8
# Manifests reached, counting repeats (nested indexes may list the same child many times, and the model holds
# each). A real layout pays for every manifest with its descriptor's bytes in an index (~150 bytes or more);
# an index bomb reaches far more manifests than the bytes read could describe. So the limit scales with the
# bytes of manifests and indexes read, never below MIN_NODES, and REGTUI_MAX_MANIFESTS overrides it.
MIN_NODES = 2_000
BYTES_PER_NODE = 32
NODES_ENV = "REGTUI_MAX_MANIFESTS"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
BASE_NAME = "org.opencontainers.image.base.name"  # Zarf names its images with it (elsewhere: the base image)


def node_limit(bytes_read: int) -> int:
    """How many manifests (counting repeats) a layout may reach after reading `bytes_read` bytes of indexes."""
    override = os.environ.get(NODES_ENV, "")
    if override.isdigit():
        return int(override)
    return max(MIN_NODES, bytes_read // BYTES_PER_NODE)


def blob_member(digest: str) -> str:
    algo, _, enc = digest.partition(":")
    return f"blobs/{algo}/{enc}"


class LayoutReader:
    def __init__(self, store: Store, problems: list[Problem], name_from_base: bool = False):
        self.store = store
        self.name_from_base = name_from_base
        self.problems = problems
        self.blobs: dict[str, Location] = {}
        self.nodes = 0
        self.bytes_read = 0  # of index.json, indexes and manifests: what the manifest limit scales with
        self.done: dict[str, tuple[Root, int]] = {}  # digest -> (node, manifests it reaches)

    def descriptor(self, obj: dict[str, Any], member: str) -> Descriptor:
        try:
            return Descriptor.from_json(obj)
        except ValueError as e:
            raise ArchiveError(str(e), member=member, path=self.store.path) from None

    # -- blobs ---------------------------------------------------------------------------------------
    def locate(self, d: Descriptor, what: str) -> Location | None:
        if not is_digest(d.digest):
            raise ArchiveError(f"{what} has an invalid digest {d.digest!r}", member="index.json", path=self.store.path)
        member = blob_member(d.digest)
        if not self.store.has(member):
            return None
        loc = self.store.locate(member)
        self.blobs[d.digest] = loc
        if d.size >= 0 and loc.size != d.size:
            self.problems.append(
                Problem(
                    "size",
                    f"{what} {d.digest}",
                    f"{d.size} bytes (descriptor)",
                    f"{loc.size} bytes in {member}",
                    "the descriptor's size is wrong (a known Docker 25.0 save bug) or the blob was replaced",
                )
            )
        return loc

    # -- documents -----------------------------------------------------------------------------------
    def read_node(self, d: Descriptor, depth: int, where: str) -> Root | None:
        if depth > MAX_DEPTH:
            raise ArchiveError(f"indexes nest deeper than {MAX_DEPTH} levels", member=where, path=self.store.path)
        done = self.done.get(d.digest)
        # Count every manifest reachable, repeats included: the model (and everything walking it) sees each.
        before = self.nodes
        self.nodes += done[1] if done else 1
        limit = node_limit(self.bytes_read)
        if self.nodes > limit:
            raise ArchiveError(
                f"indexes reach more than {limit} manifests (counting repeats) from "
                f"{self.bytes_read} bytes of indexes; regtui stops there",
                member=where,
                path=self.store.path,
                hint=f"the limit grows with the indexes' size; set {NODES_ENV} higher to read it anyway",
            )
        if done is not None:  # listed again: a shallow copy, so a platform set on it stays local
            return copy.copy(done[0])
        node = self._read_node(d, depth, where)
        if node is not None:
            self.done[d.digest] = (node, self.nodes - before)
        return node

    def _read_node(self, d: Descriptor, depth: int, where: str) -> Root | None:
        loc = self.locate(d, where)
        if loc is None:
            return None
        member = blob_member(d.digest)
        data = self.store.read(member)
        self.bytes_read += len(data)
        obj = parse_json(data, member=member, path=self.store.path)
        if not isinstance(obj, dict):
            raise ArchiveError("manifest is not a JSON object", member=member, path=self.store.path)
        digest = sha256_digest(data) if d.digest.startswith("sha256:") else d.digest
        if digest != d.digest:
            self.problems.append(
                Problem(
                    "digest",
                    member,
                    d.digest,
                    digest,
                    "the manifest bytes do not hash to the descriptor's digest; the file was altered",
                )
            )
        media_type = obj.get("mediaType") or d.media_type
        if not isinstance(media_type, str):
            raise ArchiveError(
                f"mediaType must be a string, found {media_type!r:.40}", member=member, path=self.store.path
            )
        if not media_type:
            # umoci and some tools omit it; the shape tells us what the document is.
            media_type = mt.OCI_INDEX if "manifests" in obj else mt.OCI_MANIFEST
        manifest = Manifest(media_type, data, digest, "archive")
        if mt.is_index(media_type):
            return self.read_index(manifest, obj, depth, member)
        if mt.is_manifest(media_type) or "config" in obj:
            return self.read_image(manifest, obj, d, member)
        self.problems.append(
            Problem(
                "media type",
                member,
                "an image manifest or index",
                repr(media_type),
                "not an image (an artifact or schema1); skipped",
                "warning",
            )
        )
        return None

    def read_index(self, manifest: Manifest, obj: dict[str, Any], depth: int, member: str) -> ImageIndex:
        listed = obj.get("manifests")
        descs = [self.descriptor(m, member) for m in listed if isinstance(m, dict)] if isinstance(listed, list) else []
        children: list[Root] = []
        for i, cd in enumerate(descs):
            child = self.read_node(cd, depth + 1, f"{member} manifests[{i}]")
            if child is None:
                self.problems.append(
                    Problem(
                        "index",
                        f"{member} manifests[{i}]",
                        f"{cd.digest} in the archive",
                        "not present",
                        f"partial copy: platform {cd.platform or '?'} was not saved",
                        "warning",
                    )
                )
                continue
            if isinstance(child, Image) and cd.platform:
                child.platform = cd.platform  # the index is what clients select by
            children.append(child)
        return ImageIndex("", [], manifest, descs, children, source=member)

    def read_image(self, manifest: Manifest, obj: dict[str, Any], d: Descriptor, member: str) -> Image:
        cfg = obj.get("config")
        if not isinstance(cfg, dict):
            raise ArchiveError("manifest has no config descriptor", member=member, path=self.store.path)
        cdesc = self.descriptor(cfg, member)
        if self.locate(cdesc, f"config of {member}") is None:
            raise ArchiveError(
                f"config blob {cdesc.digest} is missing",
                member=member,
                path=self.store.path,
                hint="the layout is incomplete",
            )
        config = load_config(self.store, blob_member(cdesc.digest), cdesc.media_type, claimed=cdesc.digest)
        config.descriptor = cdesc
        descs, locs = [], []
        layers = obj.get("layers") or []
        if not isinstance(layers, list):
            raise ArchiveError("layers is not a list of descriptors", member=member, path=self.store.path)
        for i, l in enumerate(layers):
            if not isinstance(l, dict):
                raise ArchiveError(f"layers[{i}] is not a descriptor", member=member, path=self.store.path)
            ld = self.descriptor(l, member)
            loc = self.locate(ld, f"layer {i} of {member}")
            if loc is None and not ld.urls:
                self.problems.append(
                    Problem(
                        "blob",
                        f"layer {i} of {member}",
                        f"{ld.digest} in the archive",
                        "not present",
                        "the archive is incomplete; pulls of this image will fail",
                    )
                )
            if ld.media_type not in mt.KNOWN_LAYERS and cdesc.media_type in (mt.OCI_CONFIG, mt.DOCKER_CONFIG):
                self.problems.append(
                    Problem(
                        "media type",
                        f"layer {i} of {member}",
                        "a known layer media type",
                        repr(ld.media_type),
                        "runtimes may refuse it; its diff_id is checked as "
                        "compressed by the type's suffix (+gzip, +zstd) or else as plain tar",
                        "warning",
                    )
                )
            descs.append(ld)
            locs.append(loc)
        subject = obj.get("subject")
        return Image(
            repository="",
            tags=[],
            config=config,
            layers=make_layers(descs, locs, config),
            manifests=[manifest],
            platform=d.platform or config_platform(config),
            source=member,
            annotations=obj.get("annotations") if isinstance(obj.get("annotations"), dict) else None,
            subject=subject.get("digest") if isinstance(subject, dict) else None,
            artifact_type=obj.get("artifactType") if isinstance(obj.get("artifactType"), str) else None,
        )

    # -- the layout ----------------------------------------------------------------------------------
    def read(self) -> list[Root]:
        store = self.store
        if store.has("oci-layout"):
            marker = store.read_json("oci-layout", 4096)
            version = marker.get("imageLayoutVersion") if isinstance(marker, dict) else None
            if version != "1.0.0":
                self.problems.append(
                    Problem(
                        "layout",
                        "oci-layout",
                        'imageLayoutVersion "1.0.0"',
                        repr(version),
                        "unknown layout version; reading it anyway",
                        "warning",
                    )
                )
        raw = store.read("index.json")
        self.bytes_read += len(raw)
        index = parse_json(raw, member="index.json", path=store.path)
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ArchiveError("must be an image index with a manifests list", member="index.json", path=store.path)
        roots: list[Root] = []
        by_digest: dict[str, Root] = {}
        fallback = stem_repository(store.path)
        for i, m in enumerate(index["manifests"]):
            if not isinstance(m, dict):
                raise ArchiveError(f"manifests[{i}] is not a descriptor", member="index.json", path=store.path)
            d = self.descriptor(m, "index.json")
            where = f"index.json manifests[{i}]"
            repo, tag = self._names(d, where)
            node = by_digest.get(d.digest)
            if node is None:
                node = self.read_node(d, 0, where)
                if node is None:
                    self.problems.append(
                        Problem(
                            "blob",
                            where,
                            f"{d.digest} in the archive",
                            "not present",
                            "the layout is incomplete; this image cannot be served",
                        )
                    )
                    continue
                node.repository = repo or fallback
                self._name_children(node)
                by_digest[d.digest] = node
                roots.append(node)
            elif repo and node.repository != repo:
                # Same content under another name: a second root sharing the model objects' bytes.
                node = _renamed(node, repo)
                roots.append(node)
                by_digest[f"{d.digest}#{repo}"] = node
            if tag and tag not in node.tags:
                node.tags.append(tag)
        return roots

    def _names(self, d: Descriptor, where: str) -> tuple[str | None, str | None]:
        ann = d.annotations or {}
        repo = tag = None
        if isinstance(ann.get(CONTAINERD_NAME), str):
            ref = parse_tag_ref(ann[CONTAINERD_NAME], self.problems, where)
            if ref:
                repo, tag = ref.name, ref.tag
        if isinstance(ann.get(REF_NAME), str):
            r, t = ref_name_annotation(ann[REF_NAME], self.problems, where)
            repo = repo or r
            tag = tag or t
        if self.name_from_base and not repo and isinstance(ann.get(BASE_NAME), str):
            ref = parse_tag_ref(ann[BASE_NAME], self.problems, where)
            if ref:
                repo, tag = ref.name, ref.tag
        return repo, tag

    def _name_children(self, node: Root) -> None:
        if isinstance(node, ImageIndex):
            for c in node.children:
                c.repository = node.repository
                self._name_children(c)


def _renamed(node: Root, repo: str) -> Root:
    import copy

    clone = copy.copy(node)
    clone.repository = repo
    clone.tags = []
    return clone


def read_layout(
    store: Store, problems: list[Problem], name_from_base: bool = False
) -> tuple[list[Root], dict[str, Location]]:
    reader = LayoutReader(store, problems, name_from_base)
    roots = reader.read()
    return roots, reader.blobs
