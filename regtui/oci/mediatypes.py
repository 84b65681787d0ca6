"""Media types of the OCI image spec and Docker's schema2, and what we know about each."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_LIST})
ALL_MANIFESTS = MANIFESTS | INDEXES

_COMPRESSION = {
    OCI_LAYER: None,
    OCI_LAYER_ND: None,
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ND_GZIP: "gzip",
    DOCKER_LAYER: "gzip",
    DOCKER_FOREIGN_LAYER: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_ND_ZSTD: "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": None,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
}

KNOWN_LAYERS = frozenset(_COMPRESSION)


def is_index(media_type: str | None) -> bool:
    return media_type in INDEXES


def is_manifest(media_type: str | None) -> bool:
    return media_type in MANIFESTS


def layer_compression(media_type: str) -> str | None:
    """'gzip', 'zstd' or None (uncompressed) for a layer media type; unknown types count as by suffix."""
    if media_type in _COMPRESSION:
        return _COMPRESSION[media_type]
    if media_type.endswith(("+gzip", ".gzip")):
        return "gzip"
    if media_type.endswith(("+zstd", ".zstd")):
        return "zstd"
    return None


def sniff_compression(head: bytes) -> str | None:
    """Compression of a blob by its magic bytes."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return None


def oci_layer_type(compression: str | None) -> str:
    return {None: OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}[compression]


def is_docker(media_type: str) -> bool:
    return media_type.startswith("application/vnd.docker.")


_SHORT = {
    DOCKER_LAYER: "docker tar+gzip",
    DOCKER_FOREIGN_LAYER: "docker foreign tar+gzip",
    OCI_LAYER: "oci tar",
    OCI_LAYER_GZIP: "oci tar+gzip",
    OCI_LAYER_ZSTD: "oci tar+zstd",
    OCI_LAYER_ND: "oci nondistributable tar",
    OCI_LAYER_ND_GZIP: "oci nondistributable tar+gzip",
    OCI_LAYER_ND_ZSTD: "oci nondistributable tar+zstd",
    DOCKER_MANIFEST: "docker manifest v2",
    DOCKER_LIST: "docker manifest list",
    OCI_MANIFEST: "oci manifest",
    OCI_INDEX: "oci index",
    DOCKER_CONFIG: "docker config",
    OCI_CONFIG: "oci config",
}


def short_name(media_type: str) -> str:
    """A readable name for tables; the full type stays in detail views."""
    return _SHORT.get(media_type, media_type)
