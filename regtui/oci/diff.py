"""The field-by-field diff of the manifest we serve for an image and an upstream one, with a verdict: the same
bytes, the same content serialized otherwise, re-compressed layers, or another image."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from regtui.oci import mediatypes as mt
from regtui.oci.digests import sha256_digest, short
from regtui.oci.expect import ExpectError, parse_manifest_bytes
from regtui.oci.model import Descriptor, Image, Manifest, Platform
from regtui.oci.negotiate import DEFAULT_PLATFORM

Verdict = Literal[
    "identical",
    "same content, different serialization",
    "re-compressed layers",
    "same image content, uncompressed layers (docker save)",
    "different image",
]
IDENTICAL: Verdict = "identical"
SERIALIZATION: Verdict = "same content, different serialization"
RECOMPRESSED: Verdict = "re-compressed layers"
UNCOMPRESSED: Verdict = "same image content, uncompressed layers (docker save)"
DIFFERENT: Verdict = "different image"


@dataclass(frozen=True)
class DiffRow:
    field: str  # "config.digest", "layers[2].size", "annotations[org.opencontainers.image.created]"
    ours: str
    upstream: str
    note: str = ""  # e.g. "upstream blob is in the archive" / "missing from the archive"

    @property
    def same(self) -> bool:
        return self.ours == self.upstream


@dataclass
class ManifestDiff:
    """Our served manifest against the upstream one, and what the difference means."""

    ours: Manifest
    upstream_digest: str
    upstream_media_type: str
    rows: list[DiffRow]
    verdict: Verdict
    summary: str  # one or two sentences: the verdict, precisely
    recompressed: list[int] = field(default_factory=list)  # layer indexes whose compressed bytes differ
    missing: list[str] = field(default_factory=list)  # upstream blob digests the archive lacks

    @property
    def differences(self) -> list[DiffRow]:
        return [r for r in self.rows if not r.same]

    def render_text(self, all_rows: bool = False) -> str:
        """Both digests, the differing fields (or all with `all_rows`), and the verdict."""
        lines = [
            f"ours      {self.ours.digest}  {self.ours.media_type}  ({self.ours.origin})",
            f"upstream  {self.upstream_digest}  {self.upstream_media_type}",
        ]
        rows = self.rows if all_rows else self.differences
        if rows:
            width = max(len(r.field) for r in rows)
            for r in rows:
                mark = "  " if r.same else "≠ "
                lines.append(f"{mark}{r.field:<{width}}  ours      {r.ours or '-'}")
                if not r.same:
                    note = f"  ({r.note})" if r.note else ""
                    lines.append(f"  {'':<{width}}  upstream  {r.upstream or '-'}{note}")
        same = len(self.rows) - len(self.differences)
        if not all_rows:
            lines.append(f"  ({same} other fields are equal)" if self.differences else "  no field differs")
        lines.append(f"verdict: {self.verdict}: {self.summary}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ours": {"digest": self.ours.digest, "mediaType": self.ours.media_type, "origin": self.ours.origin},
            "upstream": {"digest": self.upstream_digest, "mediaType": self.upstream_media_type},
            "verdict": self.verdict,
            "summary": self.summary,
            "recompressed_layers": self.recompressed,
            "missing_blobs": self.missing,
            "differences": [
                {"field": r.field, "ours": r.ours, "upstream": r.upstream, "note": r.note} for r in self.differences
            ],
        }


def descriptor_or_none(obj: object) -> Descriptor | None:
    """A descriptor from untrusted JSON, or None when it is not one."""
    if not isinstance(obj, dict):
        return None
    try:
        return Descriptor.from_json(obj)
    except (TypeError, ValueError):
        return None


def _fmt_layer(d: Descriptor) -> str:
    return f"{short(d.digest)} ({d.size} B, {d.media_type})"


def _whitespace(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    nl = ", trailing newline" if text.endswith("\n") else ""
    body = text.rstrip("\n")
    if "\n" not in body:
        return "compact" + nl
    second = body.split("\n", 2)[1]
    lead = second[: len(second) - len(second.lstrip())]
    name = {"   ": "3-space indent", "  ": "2-space indent", "\t": "tab indent", "    ": "4-space indent"}
    return name.get(lead, f"indent {lead!r}") + nl


def _key_order(obj: dict[str, Any]) -> str:
    cfg = obj.get("config")
    if not isinstance(cfg, dict):
        return ""
    keys = [k for k in cfg if k in ("mediaType", "size", "digest")]
    return ", ".join(keys)


def diff_manifests(
    image: Image,
    upstream: bytes,
    blobs: Mapping[str, object] | None = None,
    upstream_config: bytes | None = None,
    ours: Manifest | None = None,
) -> ManifestDiff:
    """Field-by-field diff of the manifest we serve for `image` and an upstream image manifest, with a verdict.

    `blobs` (archive.blobs) tells which upstream blobs the archive holds; `upstream_config`, when fetched, lets
    us tell a rebuilt config from re-compressed layers.
    """
    ours = ours or image.manifest
    blobs = blobs or {}
    o = json.loads(ours.data)
    u = parse_manifest_bytes(upstream, "upstream manifest")
    if not isinstance(u.get("layers"), list):
        raise ExpectError("upstream manifest is an index; pick the child for the image's platform first")
    udigest = sha256_digest(upstream)
    umt = str(u.get("mediaType", ""))
    rows: list[DiffRow] = []

    def add(name: str, a: object, b: object, note: str = "") -> None:
        rows.append(DiffRow(name, "" if a is None else str(a), "" if b is None else str(b), note))

    add("mediaType", o.get("mediaType"), u.get("mediaType"))
    add(
        "serialization",
        f"{_whitespace(ours.data)}; keys {_key_order(o)}",
        f"{_whitespace(upstream)}; keys {_key_order(u)}",
    )
    oc, uc = descriptor_or_none(o.get("config")), descriptor_or_none(u.get("config"))
    if uc is None:
        raise ExpectError("upstream manifest has no config descriptor")
    assert oc is not None
    add("config.mediaType", oc.media_type, uc.media_type)
    add("config.size", oc.size, uc.size)
    add(
        "config.digest",
        oc.digest,
        uc.digest,
        ""
        if uc.digest == oc.digest
        else ("upstream config is in the archive" if uc.digest in blobs else "upstream config is not in the archive"),
    )
    ol = [d for d in map(descriptor_or_none, o.get("layers") or []) if d]
    ul = [d for d in map(descriptor_or_none, u.get("layers") or []) if d]
    add("layers", f"{len(ol)} layers", f"{len(ul)} layers")
    for i in range(max(len(ol), len(ul))):
        a = ol[i] if i < len(ol) else None
        b = ul[i] if i < len(ul) else None
        add(f"layers[{i}].mediaType", a and a.media_type, b and b.media_type)
        add(f"layers[{i}].size", a and a.size, b and b.size)
        note = ""
        if b and (not a or a.digest != b.digest):
            note = "upstream blob is in the archive" if b.digest in blobs else "missing from the archive"
        add(f"layers[{i}].digest", a and a.digest, b and b.digest, note)
        if (a and a.urls) or (b and b.urls):
            add(f"layers[{i}].urls", ", ".join(a.urls) if a else "", ", ".join(b.urls) if b else "")
        oa, ua = (a.annotations or {}) if a else {}, (b.annotations or {}) if b else {}
        for k in sorted(set(oa) | set(ua)):
            add(f"layers[{i}].annotations[{k}]", oa.get(k), ua.get(k))
    oann: dict[str, Any] = o["annotations"] if isinstance(o.get("annotations"), dict) else {}
    uann: dict[str, Any] = u["annotations"] if isinstance(u.get("annotations"), dict) else {}
    for k in sorted(set(oann) | set(uann)):
        add(f"annotations[{k}]", oann.get(k), uann.get(k))
    for key in ("subject", "artifactType"):
        if key in o or key in u:
            add(key, json.dumps(o.get(key)) if key in o else "", json.dumps(u.get(key)) if key in u else "")

    missing = [d.digest for d in [uc, *ul] if d.digest not in blobs]
    same_layers = [a.digest for a in ol] == [b.digest for b in ul]
    recompressed: list[int] = []
    if udigest == ours.digest:
        verdict, summary = IDENTICAL, "the upstream manifest is byte for byte the one we serve"
    elif uc.digest == oc.digest and same_layers:
        verdict = SERIALIZATION
        what = [r.field for r in rows if not r.same]
        how = {
            "synthesized-docker": ", as crane writes it",
            "synthesized-oci": ", as regtui builds OCI",
            "archive": ", as stored in the archive",
        }.get(ours.origin, "")
        summary = (
            f"regtui's default is {ours.digest} ({_whitespace(ours.data)}{how}); upstream is {udigest} "
            f"({_whitespace(upstream)}). Both reference exactly the same config and layers; only the "
            f"bytes differ ({', '.join(what) or 'whitespace'}), so the upstream bytes can be served as "
            "they are"
        )
    elif _uncompressed_here(ol, ul) and (shared_ids := _shared_diff_ids(image, uc, upstream_config)):
        verdict = UNCOMPRESSED
        recompressed = [i for i in range(min(len(ol), len(ul))) if ol[i].digest != ul[i].digest]
        same = (
            f"all {len(ul)} layers"
            if shared_ids == len(ul) == len(ol)
            else f"{shared_ids} of {len(ul)} upstream layers"
        )
        summary = (
            f"{same} have the same content (diff_ids) as this archive's, but it stores them uncompressed "
            f"(as docker save writes them), so no registry manifest can be rebuilt from it: the registry's "
            f"blobs are compressed bytes this archive does not have, and {udigest} lists them. Export the "
            f"image from the registry with its compressed layers (crane pull, skopeo copy to oci-archive), "
            f"or have the nodes ask for {ours.digest}, which this archive serves"
        )
    elif _same_diff_ids(image, uc, upstream_config) and len(ol) == len(ul):
        verdict = RECOMPRESSED
        recompressed = [i for i, (a, b) in enumerate(zip(ol, ul, strict=True)) if a.digest != b.digest]
        names = "; ".join(
            f"layers[{i}]: upstream {_fmt_layer(ul[i])}, archive {_fmt_layer(ol[i])}" for i in recompressed
        )
        how = (
            "the same config"
            if uc.digest == oc.digest
            else "a config with the same diff_ids (uncompressed layer digests)"
        )
        raw = [
            i
            for i in recompressed
            if mt.layer_compression(ol[i].media_type) is None and mt.layer_compression(ul[i].media_type) is not None
        ]
        was = (
            "are stored uncompressed here (as docker save writes them) but compressed upstream"
            if raw and len(raw) == len(recompressed)
            else "were compressed differently"
        )
        summary = (
            f"upstream has {how} but {len(recompressed)} of {len(ul)} layers {was}, "
            f"so their blob digests differ and no manifest built from this archive can hash to "
            f"{udigest}: {names}. Either export the image again from the registry the nodes pull "
            f"from with a tool that keeps compressed blobs (crane pull, skopeo copy to oci-archive "
            f"--preserve-digests), or have the nodes ask for {ours.digest}, which this archive serves"
        )
    else:
        shared = sum(1 for b in ul if b.digest in {a.digest for a in ol})
        bits = [f"config {uc.digest} upstream vs {oc.digest} here"]
        if len(ol) != len(ul):
            bits.append(f"{len(ul)} layers upstream vs {len(ol)} here")
        bits.append(f"{shared} of {len(ul)} upstream layers are this image's")
        platform = _config_platform(upstream_config)
        if platform and image.platform and str(platform) != str(image.platform):
            bits.append(f"upstream is {platform}, the archive's image is {image.platform}")
        summary = "; ".join(bits) + (
            ". It is another build or tag of the image; the archive cannot serve it"
            if shared
            else ". Nothing in common: a different image"
        )
        if upstream_config is None and len(ol) == len(ul):
            summary += (
                " (if the upstream config has the same diff_ids, the layers were only re-compressed: "
                "`regtui diff` fetches it to tell)"
            )
        verdict = DIFFERENT
    return ManifestDiff(ours, udigest, umt, rows, verdict, summary, recompressed, missing)


def _config_platform(data: bytes | None) -> Platform | None:
    if not data:
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    return Platform.from_json(obj) if isinstance(obj, dict) else None


def _uncompressed_here(ours: list[Descriptor], upstream: list[Descriptor]) -> bool:
    """Every layer here is a plain tar (docker save) while upstream's are compressed."""
    return (
        bool(ours)
        and all(mt.layer_compression(d.media_type) is None for d in ours)
        and any(mt.layer_compression(d.media_type) is not None for d in upstream)
    )


def _shared_diff_ids(image: Image, upstream_config: Descriptor, upstream_config_bytes: bytes | None) -> int:
    """How many upstream layers have a diff_id this image has (0 when the upstream config is unknown)."""
    mine = {l.diff_id for l in image.layers if l.diff_id}
    if upstream_config.digest == image.config.descriptor.digest:
        return len(mine)
    try:
        ids = json.loads(upstream_config_bytes or b"")["rootfs"]["diff_ids"]
        return sum(1 for d in ids if d in mine)
    except (ValueError, KeyError, TypeError):
        return 0


def _same_diff_ids(image: Image, upstream_config: Descriptor, upstream_config_bytes: bytes | None) -> bool:
    if upstream_config.digest == image.config.descriptor.digest:
        return True  # a config holds the diff_ids
    if not upstream_config_bytes:
        return False
    try:
        obj = json.loads(upstream_config_bytes)
        ids = obj["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError):
        return False
    return list(ids) == [l.diff_id for l in image.layers]


def index_child(index: dict[str, Any], platform: Platform | None) -> Descriptor | None:
    """The child descriptor of an index for a platform (linux/amd64 when the image has none)."""
    want = platform or DEFAULT_PLATFORM
    best = None
    for d in map(descriptor_or_none, index.get("manifests") or []):
        if d is None or d.platform is None:
            continue
        if d.platform.os == want.os and d.platform.architecture == want.architecture:
            if not want.variant or d.platform.variant == want.variant:
                return d
            best = best or d
    return best
