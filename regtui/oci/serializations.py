"""The bytes a registry may have stored for one image's content: the bounded space of manifest serializations.

Tools that push an image write the same descriptors in different ways, and every way has its own digest:
- go-containerregistry (crane), containers/image (skopeo, podman) for Docker v2: compact Go JSON, descriptor
  keys mediaType, size, digest;
- docker push (docker/distribution 2.x `schema2.FromStruct`): `json.MarshalIndent(m, "", "   ")`, same key order;
- image-spec Go structs (containerd, buildkit, skopeo for OCI, distribution 3.x): key order mediaType, digest,
  size; buildkit and containerd indent with two spaces, skopeo writes compact JSON;
- old OCI tools (umoci, image-spec 1.0.0 era) omit the top-level `mediaType`.
Layer and config media types vary too (Docker vs OCI names, foreign / non-distributable layers on Windows bases).
`candidates()` enumerates every combination (at most ~1300) so a digest can be traced back to its form.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from regtui.oci import mediatypes as mt
from regtui.oci.digests import sha256_digest
from regtui.oci.gojson import go_escape, go_marshal
from regtui.oci.model import Descriptor, Image, Layer, Manifest

Family = Literal["docker", "oci"]
KeyOrder = Literal["size-digest", "digest-size"]

# Go's encoding/json escapes these even when indenting (json.MarshalIndent = Marshal + Indent).

DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"

# indent string -> short name; None is compact JSON.
INDENTS: dict[str | None, str] = {None: "compact", "   ": "indent3", "  ": "indent2", "\t": "tab", "    ": "indent4"}
FAMILIES: tuple[Family, ...] = ("docker", "oci")
KEY_ORDERS: dict[KeyOrder, str] = {
    "size-digest": "mediaType, size, digest (docker/distribution 2.x, go-containerregistry, containers/image)",
    "digest-size": "mediaType, digest, size (image-spec Go structs: containerd, buildkit, distribution 3.x)",
}


@dataclass(frozen=True)
class Variant:
    """One way of writing an image's manifest."""

    kind: Family = "docker"  # manifest media type: Docker schema 2 or OCI
    media_type_field: bool = True  # top-level "mediaType" present
    config_family: Family = "docker"  # config descriptor media type
    layer_family: Family = "docker"  # layer media types
    foreign: int = 0  # leading layers written as foreign / non-distributable; -1 = all
    key_order: KeyOrder = "size-digest"
    indent: str | None = None
    newline: bool = False  # trailing "\n" (written by tools that use json.Encoder)

    @property
    def media_type(self) -> str:
        return mt.DOCKER_MANIFEST if self.kind == "docker" else mt.OCI_MANIFEST

    @property
    def slug(self) -> str:
        """A short stable name, used in `Manifest.origin` ('recovered:<slug>')."""
        parts: list[str] = [self.kind]
        if not self.media_type_field:
            parts.append("no-mediatype")
        parts.append(f"config-{self.config_family}")
        parts.append(f"layers-{self.layer_family}")
        if self.foreign:
            parts.append("foreign-all" if self.foreign < 0 else f"foreign-{self.foreign}")
        parts.append(self.key_order)
        parts.append(INDENTS[self.indent])
        if self.newline:
            parts.append("newline")
        return "/".join(parts)

    def describe(self) -> str:
        """What a person reads: the form and, when known, the tool that writes it."""
        kind = "Docker v2 (schema2)" if self.kind == "docker" else "OCI image manifest"
        bits = [kind]
        if not self.media_type_field:
            bits.append("without top-level mediaType")
        natural = "docker" if self.kind == "docker" else "oci"
        if self.config_family != natural:
            bits.append(f"{self.config_family} config type")
        if self.layer_family != natural:
            bits.append(f"{self.layer_family} layer types")
        if self.foreign:
            which = "all layers" if self.foreign < 0 else f"first {self.foreign} layer(s)"
            bits.append(f"{which} foreign/non-distributable")
        ws = {
            None: "compact JSON",
            "   ": "3-space indent",
            "  ": "2-space indent",
            "\t": "tab indent",
            "    ": "4-space indent",
        }[self.indent]
        bits.append(ws)
        bits.append(f"keys {self.key_order.replace('-', ' before ')}")
        if self.newline:
            bits.append("trailing newline")
        text = ", ".join(bits)
        tool = self.known_tool()
        return f"{text} — {tool}" if tool else text

    def known_tool(self) -> str:
        natural = self.config_family == self.layer_family == ("docker" if self.kind == "docker" else "oci")
        if not natural or self.foreign or not self.media_type_field or self.newline:
            return ""
        key = (self.kind, self.key_order, self.indent)
        return {
            ("docker", "size-digest", None): "as go-containerregistry (crane) and skopeo write it",
            ("docker", "size-digest", "   "): "as docker push writes it (docker/distribution schema2)",
            ("oci", "size-digest", "   "): "as docker/distribution 2.x writes OCI manifests",
            ("oci", "digest-size", "   "): "as distribution 3.x writes it",
            ("oci", "digest-size", None): "as skopeo / podman (containers/image) write it",
            ("oci", "digest-size", "  "): "as buildkit / containerd write it",
            ("docker", "digest-size", "  "): "as buildkit writes Docker manifests",
            ("oci", "size-digest", None): "as go-containerregistry (crane) writes it",
        }.get(key, "")


def _layer_type(compression: str | None, family: str, foreign: bool) -> str:
    if family == "docker":
        if compression == "gzip":
            return mt.DOCKER_FOREIGN_LAYER if foreign else mt.DOCKER_LAYER
        return DOCKER_LAYER_ZSTD if compression == "zstd" else DOCKER_LAYER_TAR
    if foreign:
        return {None: mt.OCI_LAYER_ND, "gzip": mt.OCI_LAYER_ND_GZIP, "zstd": mt.OCI_LAYER_ND_ZSTD}[compression]
    return mt.oci_layer_type(compression)


def _descriptor(d: Descriptor, media_type: str, key_order: str) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": media_type}
    if key_order == "size-digest":
        out["size"] = d.size
        out["digest"] = d.digest
    else:
        out["digest"] = d.digest
        out["size"] = d.size
    if d.urls:
        out["urls"] = list(d.urls)
    if d.annotations:
        out["annotations"] = dict(sorted(d.annotations.items()))  # Go writes map keys sorted
    return out


def _foreign_counts(n: int) -> list[int]:
    out = [0]
    for k in (1, 2):
        if k < n:
            out.append(k)
    if n:
        out.append(-1)
    return out


def _compression(layer: Layer) -> str | None:
    return layer.compression if layer.compression else mt.layer_compression(layer.descriptor.media_type)


def manifest_object(image: Image, v: Variant) -> dict[str, Any]:
    cfg_type = mt.DOCKER_CONFIG if v.config_family == "docker" else mt.OCI_CONFIG
    body: dict[str, Any] = {"schemaVersion": 2}
    if v.media_type_field:
        body["mediaType"] = v.media_type
    body["config"] = _descriptor(image.config.descriptor, cfg_type, v.key_order)
    layers = []
    for i, layer in enumerate(image.layers):
        foreign = v.foreign < 0 or i < v.foreign
        layers.append(
            _descriptor(layer.descriptor, _layer_type(_compression(layer), v.layer_family, foreign), v.key_order)
        )
    body["layers"] = layers
    return body


def dump(obj: dict[str, Any], indent: str | None, newline: bool) -> bytes:
    """Go's json.Marshal / json.MarshalIndent(obj, "", indent) bytes, optionally with a trailing newline."""
    if indent is None:
        data = go_marshal(obj)
    else:
        data = go_escape(json.dumps(obj, indent=indent, ensure_ascii=False)).encode("utf-8")
    return data + b"\n" if newline else data


def serialize(image: Image, v: Variant) -> bytes:
    return dump(manifest_object(image, v), v.indent, v.newline)


def variants(image: Image) -> Iterator[Variant]:
    """Every variant, most common first (so a digest several variants share is named by the likeliest)."""
    seen: set[Variant] = set()
    common = [
        Variant("docker", indent="   "),
        Variant("docker"),
        Variant("oci", config_family="oci", layer_family="oci", key_order="digest-size"),
        Variant("oci", config_family="oci", layer_family="oci", key_order="digest-size", indent="  "),
        Variant("docker", key_order="digest-size", indent="  "),
        Variant("oci", config_family="oci", layer_family="oci", key_order="digest-size", indent="   "),
        Variant("oci", config_family="oci", layer_family="oci", indent="   "),
        Variant("oci", config_family="oci", layer_family="oci"),
    ]
    for v in common:
        seen.add(v)
        yield v
    for kind in FAMILIES:
        for mtf in (True, False):
            for cfg in FAMILIES:
                for lay in FAMILIES:
                    for foreign in _foreign_counts(len(image.layers)):
                        for order in KEY_ORDERS:
                            for indent in INDENTS:
                                for nl in (False, True):
                                    v = Variant(kind, mtf, cfg, lay, foreign, order, indent, nl)
                                    if not mtf and kind != cfg:
                                        continue  # same bytes; the config type tells the kind
                                    if v not in seen:
                                        seen.add(v)
                                        yield v


_MARK = "\x00"  # never in JSON output (control characters are escaped), so it can stand for any indent


def candidates(image: Image) -> dict[str, Variant]:
    """digest -> the first (likeliest) variant whose bytes hash to it.

    Python's json only indents in pure Python, so each structure is indented once with a marker that is then
    replaced by every indent string (same bytes as dumping with each, at a quarter of the cost).
    """
    out: dict[str, Variant] = {}
    templates: dict[tuple[object, ...], str] = {}
    for v in variants(image):
        if v.newline:
            continue  # derived below from the same bytes
        if v.indent is None:
            data = serialize(image, v)
        else:
            shape = (v.kind, v.media_type_field, v.config_family, v.layer_family, v.foreign, v.key_order)
            if shape not in templates:
                templates[shape] = dump(manifest_object(image, v), _MARK, False).decode("utf-8")
            data = templates[shape].replace(_MARK, v.indent).encode("utf-8")
        out.setdefault(sha256_digest(data), v)
        out.setdefault(sha256_digest(data + b"\n"), Variant(**{**v.__dict__, "newline": True}))
    return out


def recovered_manifest(image: Image, v: Variant) -> Manifest:
    data = serialize(image, v)
    return Manifest(v.media_type, data, sha256_digest(data), f"recovered:{v.slug}")
