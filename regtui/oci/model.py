"""The image model every other part consumes: archives, images, indexes, descriptors, manifests.

Built once by a format reader (`regtui.oci.formats`), then read-only but for one thing: digest forensics
(`regtui.oci.apply`) may serve a recovered serialization of an image, through `Archive.serve_manifest` and
`Archive.add_root`, before anything serves or shows the archive. Blobs are never copied: each is a
`Location` (file, offset, size) read with `os.pread`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from regtui.oci import mediatypes as mt
from regtui.oci.refs import aliases

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Location:
    """Where a blob's bytes are: `size` bytes at `offset` of the file at `path`."""

    path: str
    offset: int
    size: int
    member: str = ""  # the archive member (or layout file) it came from, for messages


@dataclass(frozen=True)
class Platform:
    os: str = ""
    architecture: str = ""
    variant: str = ""
    os_version: str = ""

    @classmethod
    def from_json(cls, obj: Any) -> Platform | None:
        if not isinstance(obj, dict):
            return None
        return cls(
            str(obj.get("os", "")),
            str(obj.get("architecture", "")),
            str(obj.get("variant", "") or ""),
            str(obj.get("os.version", "") or ""),
        )

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        if self.variant:
            s += f"/{self.variant}"
        return s


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Descriptor:
        """Raises ValueError (with a printable reason) when the size is not an integer."""
        size = obj.get("size", -1)
        if not isinstance(size, int) or isinstance(size, bool):
            raise ValueError(f"descriptor size must be an integer, found {size!r:.40}")
        urls = obj.get("urls")
        return cls(
            media_type=str(obj.get("mediaType", "")),
            digest=str(obj.get("digest", "")),
            size=size,
            annotations=obj.get("annotations") if isinstance(obj.get("annotations"), dict) else None,
            platform=Platform.from_json(obj.get("platform")),
            artifact_type=obj.get("artifactType") if isinstance(obj.get("artifactType"), str) else None,
            urls=tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        )


@dataclass(frozen=True)
class Manifest:
    """A document a registry serves: these exact bytes, with this media type and digest."""

    media_type: str
    data: bytes
    digest: str
    origin: str  # "archive" (stored bytes), "synthesized-docker", "synthesized-oci"

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_index(self) -> bool:
        return mt.is_index(self.media_type)


@dataclass(frozen=True)
class History:
    created: str = ""
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False


def history_list(config_json: dict[str, Any]) -> list[Any]:
    """The config's history, or [] when it is not a list (hostile or broken configs)."""
    h = config_json.get("history")
    return h if isinstance(h, list) else []


@dataclass
class Layer:
    descriptor: Descriptor
    location: Location | None  # None when the archive does not hold it (foreign / missing)
    diff_id: str | None
    history: History | None
    compression: str | None  # "gzip", "zstd" or None

    @property
    def digest(self) -> str:
        return self.descriptor.digest


@dataclass
class Config:
    descriptor: Descriptor
    data: bytes
    json: dict[str, Any]
    location: Location | None


@dataclass
class Image:
    """One runnable image: config, layers, and the manifest forms a registry may serve for it."""

    repository: str  # familiar name; from the archive's tags, or derived from the file name
    tags: list[str]
    config: Config
    layers: list[Layer]
    manifests: list[Manifest]  # [0] is what a client gets by default
    platform: Platform | None = None
    source: str = ""  # where in the archive this image is described
    annotations: dict[str, str] | None = None
    subject: str | None = None  # digest of the manifest this one refers to (OCI referrers)
    artifact_type: str | None = None

    @property
    def manifest(self) -> Manifest:
        return self.manifests[0]

    @property
    def history(self) -> list[History]:
        out = []
        for h in history_list(self.config.json):
            if isinstance(h, dict):
                out.append(
                    History(
                        str(h.get("created", "")),
                        str(h.get("created_by", "")),
                        str(h.get("comment", "")),
                        bool(h.get("empty_layer", False)),
                    )
                )
        return out

    def total_size(self) -> int:
        return sum(max(0, l.descriptor.size) for l in self.layers) + self.config.descriptor.size


@dataclass
class ImageIndex:
    """A multi-platform index (OCI index or Docker manifest list) and the children the archive holds."""

    repository: str
    tags: list[str]
    manifest: Manifest
    descriptors: list[Descriptor]
    children: list[Image | ImageIndex]
    source: str = ""

    @property
    def manifests(self) -> list[Manifest]:
        return [self.manifest]

    def images(self) -> list[Image]:
        out: list[Image] = []
        for c in self.children:
            out.extend(c.images() if isinstance(c, ImageIndex) else [c])
        return out


Root = Image | ImageIndex


@dataclass(frozen=True)
class Problem:
    """A finding: what was expected, what was found, and the likely cause."""

    check: str
    subject: str
    expected: str
    found: str
    cause: str
    severity: Severity = "error"

    def line(self) -> str:
        return f"{self.check} {self.subject}: expected {self.expected}, found {self.found} — {self.cause}"


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a file at open time; a change means our offsets may be stale.

    mtime alone can be put back (`touch -r`, `os.utime`) after other bytes were written; ctime cannot be set
    from user space and moves with every write, truncate and utime, so it catches those too.
    """

    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int = 0
    device: int = 0

    @classmethod
    def of(cls, path: str) -> Fingerprint:
        return cls.of_stat(os.stat(path))

    @classmethod
    def of_stat(cls, st: os.stat_result) -> Fingerprint:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_dev)


@dataclass
class Archive:
    path: str
    format: str  # see FORMAT_NAMES
    roots: list[Root]
    blobs: dict[str, Location]  # every blob the archive holds, by digest (claimed; verify checks)
    warnings: list[Problem] = field(default_factory=list)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)  # file path -> identity at open
    package: Any = None  # a regtui.oci.zarf.ZarfPackage when the archive is a Zarf package

    # -- derived views, built once -------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.manifests: dict[str, Manifest] = {}
        self.roots_by_manifest: dict[str, Root] = {}
        for root in self.roots:
            self._collect(root)

    def _collect(self, node: Root) -> None:
        for m in node.manifests:
            self.manifests.setdefault(m.digest, m)
            self.roots_by_manifest.setdefault(m.digest, node)
        if isinstance(node, ImageIndex):
            for child in node.children:
                self._collect(child)

    # -- serving an extra serialization (digest forensics) --------------------------------------------
    def serve_manifest(self, image: Image, manifest: Manifest, position: int = 0) -> Manifest:
        """Serve `manifest` for `image` by digest and as its form number `position` (0: what its tag serves by
        default). A form the image already has moves there. Returns the manifest now served."""
        existing = next((m for m in image.manifests if m.digest == manifest.digest), None)
        if existing is not None:
            image.manifests.remove(existing)
            manifest = existing
        image.manifests.insert(min(position, len(image.manifests)), manifest)
        self.manifests[manifest.digest] = manifest
        self.roots_by_manifest[manifest.digest] = image
        return manifest

    def add_root(self, root: Root) -> None:
        """Serve one more root (e.g. a sparse index recovered from its upstream bytes) by its digests."""
        self.roots.append(root)
        self._collect(root)

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.format, self.format)

    def images(self) -> list[Image]:
        out: list[Image] = []
        for r in self.roots:
            out.extend(r.images() if isinstance(r, ImageIndex) else [r])
        return out

    def repositories(self) -> dict[str, list[Root]]:
        """Familiar repository name -> roots served under it."""
        repos: dict[str, list[Root]] = {}
        for r in self.roots:
            repos.setdefault(r.repository, []).append(r)
        return repos

    def tags(self) -> dict[tuple[str, str], Root]:
        out: dict[tuple[str, str], Root] = {}
        for r in self.roots:
            for t in r.tags:
                out.setdefault((r.repository, t), r)
        return out

    def blob_digests(self, root: Root) -> set[str]:
        """Every blob (config, layers, child manifests) reachable from a root."""
        out: set[str] = set()
        images = root.images() if isinstance(root, ImageIndex) else [root]
        for img in images:
            out.add(img.config.descriptor.digest)
            out.update(l.digest for l in img.layers)
        out.update(self._manifest_digests(root))
        return out

    def _manifest_digests(self, node: Root) -> set[str]:
        out = {m.digest for m in node.manifests}
        if isinstance(node, ImageIndex):
            for c in node.children:
                out |= self._manifest_digests(c)
        return out

    def total_size(self) -> int:
        return sum(loc.size for loc in self.blobs.values())

    def all_aliases(self) -> dict[str, str]:
        """Every repository name a client may use -> the familiar name it means."""
        out: dict[str, str] = {}
        for repo in self.repositories():
            for a in aliases(repo):
                out.setdefault(a, repo)
        return out


FORMAT_NAMES = {
    "crane-tarball": "go-containerregistry tarball (crane / Zarf seed image)",
    "docker-save-legacy": "docker save (legacy)",
    "docker-save": "docker save (Docker 25+, OCI layout inside)",
    "oci-archive": "OCI image layout (tar archive)",
    "oci-layout": "OCI image layout (folder)",
    "zarf-package": "Zarf package",
}
