"""What the registry serves under which repository name, built once from the archives.

A name answers for the roots whose repository it aliases (`registry`, `library/registry`,
`docker.io/library/registry`), plus every root for names given with `--name` (or any valid name with
`--any-name`). Blobs are scoped to a repository: only those its roots reference, as distribution does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from regtui.oci import mediatypes as mt
from regtui.oci.model import Archive, Image, ImageIndex, Location, Manifest, Root
from regtui.oci.refs import aliases, familiar, is_name


@dataclass(frozen=True)
class Blob:
    """Bytes a client may GET under /blobs/: in the archive (location) or in memory (a synthesized manifest)."""

    digest: str
    size: int
    archive: Archive
    location: Location | None = None
    data: bytes | None = None


@dataclass
class Repo:
    name: str
    roots: list[tuple[Archive, Root]] = field(default_factory=list)
    tags: dict[str, tuple[Archive, Root]] = field(default_factory=dict)
    manifests: dict[str, tuple[Archive, Manifest, Root]] = field(default_factory=dict)
    blobs: dict[str, Blob] = field(default_factory=dict)

    def add(self, archive: Archive, root: Root) -> None:
        if any(r is root for _, r in self.roots):
            return
        self.roots.append((archive, root))
        for tag in root.tags:
            self.tags.setdefault(tag, (archive, root))  # first archive given wins a tag collision
        for node in _walk(root):
            for m in node.manifests:
                self.manifests.setdefault(m.digest, (archive, m, node))
                self.blobs.setdefault(m.digest, Blob(m.digest, m.size, archive, data=m.data))
        for digest in archive.blob_digests(root):
            loc = archive.blobs.get(digest)
            if loc is not None and (digest not in self.blobs or self.blobs[digest].location is None):
                self.blobs[digest] = Blob(digest, loc.size, archive, location=loc)

    def referrers(self, digest: str) -> list[tuple[Image, Manifest]]:
        out = []
        seen = set()
        for _, root in self.roots:
            for node in _walk(root):
                if isinstance(node, Image) and node.subject == digest:
                    for m in node.manifests:
                        if m.digest not in seen:
                            seen.add(m.digest)
                            out.append((node, m))
        return out


def _walk(node: Root):
    yield node
    if isinstance(node, ImageIndex):
        for c in node.children:
            yield from _walk(c)


class Catalog:
    def __init__(self, archives: list[Archive], names: list[str] | tuple[str, ...] = (), any_name: bool = False):
        self.archives = list(archives)
        self.any_name = any_name
        self.repos: dict[str, Repo] = {}
        self.listed: list[str] = []  # names shown by /v2/_catalog: familiar forms only
        self.everything = Repo("*")
        referrers = []
        for archive in self.archives:
            extra = list(names)
            for root in archive.roots:
                self.everything.add(archive, root)
                if isinstance(root, Image) and root.subject and not root.tags:
                    referrers.append((archive, root))
                    continue
                self._add(root.repository, archive, root)
                for n in extra:
                    self._add(n, archive, root)
        # An untagged artifact (signature, SBOM) lives in the repositories of the manifest it refers to.
        for archive, root in referrers:
            homes = [r for r in self.repos.values() if root.subject in r.manifests]
            if not homes:
                self._add(root.repository, archive, root)
            for repo in homes:
                repo.add(archive, root)

    def _add(self, name: str, archive: Archive, root: Root) -> None:
        if not name:
            return
        fam = familiar(name)
        if fam not in self.listed:
            self.listed.append(fam)
        for alias in aliases(name):
            self.repos.setdefault(alias, Repo(alias)).add(archive, root)

    def lookup(self, name: str) -> Repo | None:
        repo = self.repos.get(name)
        if repo is None and self.any_name and is_name(name):
            return self.everything
        return repo

    def catalog(self) -> list[str]:
        return sorted(self.listed)

    def is_empty(self) -> bool:
        return not self.repos


def blob_count(root: Root) -> tuple[dict[str, int], set[str]]:
    """(blob digest -> size) a client pulling `root` fetches from /blobs/, and the child manifest digests."""
    if isinstance(root, ImageIndex):
        children: set[str] = set()
        for node in _walk(root):
            if node is not root:
                children.update(m.digest for m in node.manifests)
        return {}, children
    sizes = {root.config.descriptor.digest: max(0, root.config.descriptor.size)}
    for layer in root.layers:
        sizes[layer.digest] = max(0, layer.descriptor.size)
    return sizes, set()


def artifact_type(image: Image) -> str:
    return image.artifact_type or image.config.descriptor.media_type or mt.OCI_EMPTY
