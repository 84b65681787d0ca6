"""Manifests for archives that do not store one (crane tarballs, docker save legacy).

We build them exactly as go-containerregistry's `tarball.Image` does, so `crane digest --tarball` agrees:
compact Go JSON, fields in Go struct order, Docker schema2 types for gzip layers. Layers Docker schema2 cannot
describe (uncompressed, zstd) are served as they are in an OCI manifest instead of being re-compressed.
"""

from __future__ import annotations

from typing import Any

from regtui.oci import mediatypes as mt
from regtui.oci.digests import sha256_digest
from regtui.oci.gojson import go_marshal
from regtui.oci.model import Descriptor, Manifest


def descriptor_json(d: Descriptor) -> dict[str, Any]:
    """A descriptor in go-containerregistry's v1.Descriptor field order, empty fields omitted."""
    out: dict[str, Any] = {"mediaType": d.media_type, "size": d.size, "digest": d.digest}
    if d.urls:
        out["urls"] = list(d.urls)
    if d.annotations:
        out["annotations"] = dict(sorted(d.annotations.items()))  # Go marshals map keys sorted
    return out


def _manifest(media_type: str, config: Descriptor, layers: list[Descriptor], origin: str) -> Manifest:
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor_json(config),
        "layers": [descriptor_json(l) for l in layers],
    }
    data = go_marshal(body)
    return Manifest(media_type, data, sha256_digest(data), origin)


def docker_layer_type(compression: str | None, source_type: str | None = None) -> str | None:
    """The schema2 type for a layer, or None when schema2 has no type for it."""
    if source_type and mt.is_docker(source_type):
        return source_type
    return mt.DOCKER_LAYER if compression == "gzip" else None


def synthesize(config_digest: str, config_size: int, layers: list[tuple[Descriptor, str | None]]) -> list[Manifest]:
    """The forms we serve for an image with no stored manifest; [0] is the default.

    `layers` holds each layer's descriptor (media type as the archive suggests it) and its compression.
    """
    oci_layers = []
    docker_layers: list[Descriptor] | None = []
    for desc, compression in layers:
        dtype = docker_layer_type(compression, desc.media_type)
        if dtype is None:
            docker_layers = None
        elif docker_layers is not None:
            docker_layers.append(Descriptor(dtype, desc.digest, desc.size, desc.annotations, urls=desc.urls))
        oci = desc.media_type.startswith("application/vnd.oci.")
        otype = desc.media_type if oci else mt.oci_layer_type(compression)
        if desc.media_type == mt.DOCKER_FOREIGN_LAYER:
            otype = mt.OCI_LAYER_ND_GZIP
        oci_layers.append(Descriptor(otype, desc.digest, desc.size, desc.annotations, urls=desc.urls))
    forms = []
    if docker_layers is not None:
        forms.append(
            _manifest(
                mt.DOCKER_MANIFEST,
                Descriptor(mt.DOCKER_CONFIG, config_digest, config_size),
                docker_layers,
                "synthesized-docker",
            )
        )
    forms.append(
        _manifest(mt.OCI_MANIFEST, Descriptor(mt.OCI_CONFIG, config_digest, config_size), oci_layers, "synthesized-oci")
    )
    return forms
