"""The Zarf package model, built from any of its forms (see the package docstring)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from regtui.oci.errors import ArchiveError
from regtui.oci.formats.layout import read_layout
from regtui.oci.model import Archive, Image, ImageIndex, Location, Problem, Root
from regtui.oci.store import DirStore, Store, SubStore
from regtui.oci.zarf.checksums import (
    CHECKSUMS,
    MAX_CHECKSUMS,
    ZARF_YAML,
    Entry,
    Signature,
    parse_checksums,
    signatures,
)
from regtui.oci.zarf.config import Component, PackageConfig, parse_config
from regtui.oci.zarf.names import ZarfName, zarf_name

FORMS = {
    "tar": "uncompressed tar, read in place",
    "tar.zst": "zstd-compressed tar, unpacked once into the cache",
    "split": "split package (.part000 + parts), unpacked once into the cache",
    "folder": "unpacked folder, read in place",
}


@dataclass
class ZarfImage:
    """An image of the package: as a component lists it (or as images/index.json names it), and its root."""

    name: ZarfName
    root: Root | None = field(repr=False)  # None: a component needs it but images/ does not hold it
    components: list[str] = field(default_factory=list)  # components that list it; [] = only in index.json


@dataclass
class ZarfPackage:
    source: str  # what the user gave: the .tar, .tar.zst, .part000 or folder
    form: str  # a key of FORMS
    config: PackageConfig
    checksums: list[Entry]
    checksums_sha256: str  # hex of checksums.txt as found
    signatures: list[Signature]
    store: Store  # the package's files: the tar in place, or a folder (the user's or the cache's)
    images: list[ZarfImage]
    cache_path: str | None = None  # the unpacked folder in the cache, for compressed forms
    unpack_seconds: float = 0.0  # 0 when the cache answered

    @property
    def title(self) -> str:
        m = self.config.metadata
        return f"{m.name} {m.version}".strip()

    @property
    def architecture(self) -> str:
        return self.config.metadata.architecture or self.config.build.architecture

    def component_images(self, component: Component) -> list[ZarfImage]:
        return [img for img in self.images if component.name in img.components]

    def rewritten_names(self, root: Root) -> list[str]:
        """The pull names a Zarf cluster uses for this root, without the registry host."""
        return [img.name.rewritten for img in self.images if img.root is root]


def _file_sha256(store: Store, name: str, limit: int) -> tuple[bytes, str]:
    data = store.read(name, limit)
    return data, hashlib.sha256(data).hexdigest()


def package_from_store(
    store: Store, source: str, form: str, problems: list[Problem], cache_path: str | None = None
) -> tuple[ZarfPackage, list[Root], dict[str, Location]]:
    """Model the package held by `store` (which has zarf.yaml) and read its images from `images/`."""
    config = parse_config(store.read(ZARF_YAML, 4 * 1024 * 1024), source)
    if not store.has(CHECKSUMS):
        raise ArchiveError(
            "has zarf.yaml but no checksums.txt",
            path=source,
            hint="every Zarf package lists its files' checksums; this one is incomplete",
        )
    data, sums_hex = _file_sha256(store, CHECKSUMS, MAX_CHECKSUMS)
    entries = parse_checksums(data, source)
    if store.has("images/index.json"):
        images_store: Store = (
            DirStore(os.path.join(store.path, "images")) if isinstance(store, DirStore) else SubStore(store, "images")
        )
        roots, blobs = read_layout(images_store, problems, name_from_base=True)
    else:
        roots, blobs = [], {}
    images = _match_images(config, roots, problems, source)
    pkg = ZarfPackage(source, form, config, entries, sums_hex, signatures(store), store, images, cache_path)
    return pkg, roots, blobs


def _full(repository: str) -> str | None:
    try:
        return zarf_name(repository).full_name
    except ValueError:
        return None


def _match_images(config: PackageConfig, roots: list[Root], problems: list[Problem], source: str) -> list[ZarfImage]:
    """Tag each root with its Zarf-rewritten tag, and pair component images with roots."""
    by_tag: dict[tuple[str, str], Root] = {}
    by_digest: dict[tuple[str, str], Root] = {}
    for root in roots:
        full = _full(root.repository)
        if full is None:
            continue
        by_digest.setdefault((full, root.manifests[0].digest), root)
        for tag in list(root.tags):
            by_tag.setdefault((full, tag), root)
            zt = zarf_name(f"{root.repository}:{tag}").zarf_tag
            if zt and zt not in root.tags:
                root.tags.append(zt)
    images: dict[str, ZarfImage] = {}
    for comp in config.components:
        for text in comp.images:
            try:
                zn = zarf_name(text)
            except ValueError as e:
                problems.append(
                    Problem("zarf image", f"component {comp.name}", "a valid image reference", repr(text), str(e))
                )
                continue
            img = images.get(zn.rewritten)
            if img is None:
                found = (
                    by_digest.get((zn.full_name, zn.digest)) if zn.digest else by_tag.get((zn.full_name, zn.tag or ""))
                )
                img = images[zn.rewritten] = ZarfImage(zn, found)
            if comp.name not in img.components:
                img.components.append(comp.name)
    used = {id(i.root) for i in images.values() if i.root is not None}
    for root in roots:
        if id(root) in used:
            continue
        tags = [t for t in root.tags if "-zarf-" not in t]
        ref = f"{root.repository}:{tags[0]}" if tags else f"{root.repository}@{root.manifests[0].digest}"
        try:
            images[ref] = ZarfImage(zarf_name(ref), root)
        except ValueError:
            continue
    return list(images.values())


def images_of(root: Root) -> list[Image]:
    return root.images() if isinstance(root, ImageIndex) else [root]


def archive_for_package(
    store: Store, source: str, form: str, problems: list[Problem], cache_path: str | None = None
) -> Archive:
    pkg, roots, blobs = package_from_store(store, source, form, problems, cache_path)
    archive = Archive(
        path=source,
        format="zarf-package",
        roots=roots,
        blobs=blobs,
        warnings=problems,
        fingerprints=store.fingerprints(),
        package=pkg,
    )
    return archive
