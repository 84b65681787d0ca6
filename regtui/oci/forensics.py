"""Digest forensics: make an archive serve the manifest digests users expect, or say precisely why it cannot.

A crane tarball or a `docker save` never stores the registry manifest; we synthesize one, and its digest may
differ from the upstream one a node asks for (`registry:2.8.1@sha256:<upstream>`). `apply_expectations` searches
the serializations a registry may have stored (`regtui.oci.serializations`), serves the one that hashes to the
expected digest, and otherwise explains the mismatch — with a field-by-field diff when the upstream manifest is
known (`diff_manifests`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regtui.oci import mediatypes as mt
from regtui.oci.digests import is_digest, sha256_digest, short
from regtui.oci.model import Archive, Descriptor, Image, ImageIndex, Manifest, Platform
from regtui.oci.negotiate import DEFAULT_PLATFORM
from regtui.oci.refs import ImageRef, aliases, parse_ref
from regtui.oci.serializations import Variant, candidates, recovered_manifest

MATCHED_SERVED = "matched-as-served"
MATCHED_VARIANT = "matched-by-variant"
NO_MATCH = "no-match"

# diff verdicts
IDENTICAL = "identical"
SERIALIZATION = "same content, different serialization"
RECOMPRESSED = "re-compressed layers"
DIFFERENT = "different image"


class ExpectError(ValueError):
    """Bad expectation input (reference, list file, manifest file); str() is the one-line message."""


@dataclass(frozen=True)
class Expectation:
    """A manifest digest someone will ask for, and where we were told about it."""

    digest: str
    ref: ImageRef | None  # None when only an upstream manifest file was given
    source: str  # "--expect", "images.txt:3", "--expect-manifest m.json"
    upstream: bytes | None = None  # the upstream manifest, when supplied
    upstream_source: str = ""

    @property
    def upstream_exact(self) -> bool:
        """The supplied manifest bytes are exactly the expected ones (not re-formatted by jq and the like)."""
        return self.upstream is not None and sha256_digest(self.upstream) == self.digest

    def label(self) -> str:
        return str(self.ref) if self.ref else self.digest


def parse_expectation(text: str, source: str = "--expect") -> Expectation:
    """`IMAGE@sha256:...` (any reference form docker accepts); raises ExpectError."""
    try:
        ref = parse_ref(text)
    except ValueError as e:
        raise ExpectError(f"{source}: {text.strip()!r}: {e}") from None
    if not ref.digest:
        raise ExpectError(f"{source}: {text.strip()!r} has no @sha256:... digest to expect")
    if not is_digest(ref.digest):
        raise ExpectError(f"{source}: {ref.digest!r} is not a sha256/sha512 digest we can check")
    return Expectation(ref.digest, ref, source)


def parse_expect_list(text: str, name: str) -> tuple[list[Expectation], list[str]]:
    """An air-gap image list: one reference per line; `#` comments and blank lines ignored.

    Returns (expectations, notes); lines without a digest have nothing to check and become notes.
    """
    out: list[Expectation] = []
    notes: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if len(line.split()) > 1:
            line = line.split()[0]  # "name@digest  # comment" and "name@digest extra columns"
        if "@" not in line:
            notes.append(f"{name}:{n}: {line} has no digest; nothing to check")
            continue
        out.append(parse_expectation(line, f"{name}:{n}"))
    return out, notes


def read_expect_file(path: str) -> tuple[list[Expectation], list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ExpectError(f"--expect-file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ExpectError(f"--expect-file {path}: not a UTF-8 text file of image references") from None
    return parse_expect_list(text, path)


def parse_manifest_bytes(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ExpectError(f"{where}: not JSON ({e})") from None
    if not isinstance(obj, dict) or obj.get("schemaVersion") != 2:
        raise ExpectError(f"{where}: not an image manifest or index (schemaVersion 2 expected)")
    if not isinstance(obj.get("layers"), list) and not isinstance(obj.get("manifests"), list):
        raise ExpectError(f"{where}: neither an image manifest (layers) nor an index (manifests)")
    return obj


def attach_manifest(expectations: list[Expectation], data: bytes, source: str) -> list[Expectation]:
    """Join a supplied upstream manifest to the expectation it belongs to (by digest), or add one for it.

    A file that hashes to no expected digest was likely re-formatted (`jq .`): with exactly one expectation
    it is used for that one's diff; otherwise it becomes its own expectation.
    """
    parse_manifest_bytes(data, source)
    digest = sha256_digest(data)
    out = list(expectations)
    for i, e in enumerate(out):
        if e.digest == digest:
            out[i] = Expectation(e.digest, e.ref, e.source, data, source)
            return out
    if len(out) == 1 and out[0].upstream is None:
        e = out[0]
        out[0] = Expectation(e.digest, e.ref, e.source, data, source)
        return out
    out.append(Expectation(digest, None, source, data, source))
    return out


def read_manifest_file(expectations: list[Expectation], path: str) -> list[Expectation]:
    try:
        with open(path, "rb") as f:
            data = f.read(4 << 20)
    except OSError as e:
        raise ExpectError(f"--expect-manifest {path}: {e.strerror or e}") from None
    return attach_manifest(expectations, data, f"--expect-manifest {path}")


# -- the field-by-field diff ------------------------------------------------------------------------------


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
    verdict: str  # IDENTICAL | SERIALIZATION | RECOMPRESSED | DIFFERENT
    summary: str  # one or two sentences: the verdict, precisely
    recompressed: list[int] = field(default_factory=list)  # layer indexes whose compressed bytes differ
    missing: list[str] = field(default_factory=list)  # upstream blob digests the archive lacks

    @property
    def differences(self) -> list[DiffRow]:
        return [r for r in self.rows if not r.same]

    def render_text(self, all_rows: bool = False) -> str:
        """Both digests, the differing fields (or all with `all_rows`), and the verdict."""
        lines = [f"ours      {self.ours.digest}  {self.ours.media_type}  ({self.ours.origin})",
                 f"upstream  {self.upstream_digest}  {self.upstream_media_type}"]
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
            "differences": [{"field": r.field, "ours": r.ours, "upstream": r.upstream, "note": r.note}
                            for r in self.differences],
        }


def _desc(obj: object) -> Descriptor | None:
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


def diff_manifests(image: Image, upstream: bytes, blobs: Mapping[str, object] | None = None,
                   upstream_config: bytes | None = None, ours: Manifest | None = None) -> ManifestDiff:
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
    add("serialization", f"{_whitespace(ours.data)}; keys {_key_order(o)}",
        f"{_whitespace(upstream)}; keys {_key_order(u)}")
    oc, uc = _desc(o.get("config")), _desc(u.get("config"))
    if uc is None:
        raise ExpectError("upstream manifest has no config descriptor")
    assert oc is not None
    add("config.mediaType", oc.media_type, uc.media_type)
    add("config.size", oc.size, uc.size)
    add("config.digest", oc.digest, uc.digest, "" if uc.digest == oc.digest else
        ("upstream config is in the archive" if uc.digest in blobs else "upstream config is not in the archive"))
    ol = [d for d in map(_desc, o.get("layers") or []) if d]
    ul = [d for d in map(_desc, u.get("layers") or []) if d]
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
        summary = ("both reference exactly the same config and layers; only the bytes differ "
                   f"({', '.join(what) or 'whitespace'}), so the upstream bytes can be served as they are")
    elif _same_diff_ids(image, uc, upstream_config) and len(ol) == len(ul):
        verdict = RECOMPRESSED
        recompressed = [i for i, (a, b) in enumerate(zip(ol, ul, strict=True)) if a.digest != b.digest]
        names = "; ".join(f"layers[{i}]: upstream {_fmt_layer(ul[i])}, archive {_fmt_layer(ol[i])}"
                          for i in recompressed)
        how = ("the same config" if uc.digest == oc.digest else
               "a config with the same diff_ids (uncompressed layer digests)")
        raw = [i for i in recompressed if mt.layer_compression(ol[i].media_type) is None
               and mt.layer_compression(ul[i].media_type) is not None]
        was = ("are stored uncompressed here (as docker save writes them) but compressed upstream"
               if raw and len(raw) == len(recompressed) else "were compressed differently")
        summary = (f"upstream has {how} but {len(recompressed)} of {len(ul)} layers {was}, "
                   f"so their blob digests differ and no manifest built from this archive can hash to "
                   f"{short(udigest)}: {names}. Either export the image again from the registry the nodes pull "
                   f"from with a tool that keeps compressed blobs (crane pull, skopeo copy to oci-archive "
                   f"--preserve-digests), or have the nodes ask for {short(ours.digest)}, which this archive serves")
    else:
        shared = sum(1 for b in ul if b.digest in {a.digest for a in ol})
        bits = [f"config {short(uc.digest)} upstream vs {short(oc.digest)} here"]
        if len(ol) != len(ul):
            bits.append(f"{len(ul)} layers upstream vs {len(ol)} here")
        bits.append(f"{shared} of {len(ul)} upstream layers are this image's")
        platform = _config_platform(upstream_config)
        if platform and image.platform and str(platform) != str(image.platform):
            bits.append(f"upstream is {platform}, the archive's image is {image.platform}")
        summary = "; ".join(bits) + (". It is another build or tag of the image; the archive cannot serve it"
                                     if shared else ". Nothing in common: a different image")
        if upstream_config is None and len(ol) == len(ul):
            summary += (" (if the upstream config has the same diff_ids, the layers were only re-compressed: "
                        "`regtui diff` fetches it to tell)")
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
    for d in map(_desc, index.get("manifests") or []):
        if d is None or d.platform is None:
            continue
        if d.platform.os == want.os and d.platform.architecture == want.architecture:
            if not want.variant or d.platform.variant == want.variant:
                return d
            best = best or d
    return best


# -- applying expectations ------------------------------------------------------------------------------


@dataclass
class ExpectResult:
    """What became of one expectation: served as is, recovered by a variant, or not matched (and why)."""

    expectation: Expectation
    status: str  # MATCHED_SERVED | MATCHED_VARIANT | NO_MATCH
    explanation: str
    archive: Archive | None = None
    image: Image | None = None
    manifest: Manifest | None = None  # what is now served under the expected digest
    variant: str = ""  # Variant.slug, "upstream-manifest" or "upstream-index"
    variant_description: str = ""
    diff: ManifestDiff | None = None
    searched: int = 0  # candidate serializations tried
    seconds: float = 0.0

    @property
    def matched(self) -> bool:
        return self.status != NO_MATCH

    def image_label(self) -> str:
        return image_label(self.image) if self.image else ""

    def line(self) -> str:
        head = f"{self.expectation.label()} ({self.expectation.source})"
        if self.status == MATCHED_SERVED:
            return f"{head}: matched as served — {self.explanation}"
        if self.status == MATCHED_VARIANT:
            return f"{head}: matched by variant {self.variant} — {self.explanation}"
        return f"{head}: no match — {self.explanation}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expectation.digest,
            "reference": str(self.expectation.ref) if self.expectation.ref else None,
            "source": self.expectation.source,
            "status": self.status,
            "variant": self.variant or None,
            "variant_description": self.variant_description or None,
            "image": self.image_label() or None,
            "archive": self.archive.path if self.archive else None,
            "served": {"digest": self.manifest.digest, "mediaType": self.manifest.media_type,
                       "origin": self.manifest.origin} if self.manifest else None,
            "explanation": self.explanation,
            "searched": self.searched,
            "diff": self.diff.to_dict() if self.diff else None,
        }


_RESULTS_ATTR = "_regtui_expect_results"


def expect_results(archive: Archive) -> list[ExpectResult]:
    """The results applied to this archive so far (for the UI's Manifests view)."""
    return list(getattr(archive, _RESULTS_ATTR, []))


class _Search:
    """Candidate digests per image, computed once however many expectations ask."""

    def __init__(self) -> None:
        self.cache: dict[int, dict[str, Variant]] = {}

    def of(self, image: Image) -> dict[str, Variant]:
        key = id(image)
        if key not in self.cache:
            self.cache[key] = candidates(image)
        return self.cache[key]


def _pairs(archives: list[Archive]) -> list[tuple[Archive, Image]]:
    return [(a, img) for a in archives for img in a.images()]


def _tags_of(archive: Archive, image: Image) -> list[str]:
    """The image's tags, or those of the index that holds it (multi-platform archives tag the index)."""
    for root in archive.roots:
        if root is image or (isinstance(root, ImageIndex) and any(i is image for i in root.images())):
            return list(root.tags) or list(image.tags)
    return list(image.tags)


def _rest(pairs: list[tuple[Archive, Image]], first: list[tuple[Archive, Image]]) -> list[tuple[Archive, Image]]:
    chosen = {id(i) for _, i in first}
    return first + [p for p in pairs if id(p[1]) not in chosen]


def _pick_images(pairs: list[tuple[Archive, Image]], exp: Expectation) -> tuple[list[tuple[Archive, Image]], str]:
    """Images the expectation may mean, best first, and a note when the name did not decide."""
    ref = exp.ref
    if ref is not None:
        named = [(a, i) for a, i in pairs if i.repository == ref.name]
        if not named:  # a mirror's name for it (127.0.0.1:5000/registry), or ours is host-qualified
            named = [(a, i) for a, i in pairs if ref.name in aliases(i.repository) or i.repository in aliases(ref.name)]
        tagged = [(a, i) for a, i in named if ref.tag and ref.tag in _tags_of(a, i)]
        if tagged:
            return _rest(named, tagged), ""
        if named:
            note = f"no image tagged {ref.name}:{ref.tag}; tried {ref.name}'s images" if ref.tag else ""
            return named, note
        names = sorted({i.repository for _, i in pairs})
        note = f"no image named {ref.name} in the archive (it holds {', '.join(names)}); tried every image"
        return pairs, note
    if exp.upstream is not None:
        try:
            u = json.loads(exp.upstream)
            cfg = (u.get("config") or {}).get("digest")
        except (ValueError, AttributeError):
            cfg = None
        same = [(a, i) for a, i in pairs if i.config.descriptor.digest == cfg]
        if same:
            return _rest(pairs, same), ""
    return pairs, ""


def _serve(archive: Archive, image: Image, manifest: Manifest, front: dict[int, int]) -> None:
    """Make `manifest` the form the image's tag serves by default, and servable by digest."""
    pos = front.get(id(image), 0)
    existing = [m for m in image.manifests if m.digest == manifest.digest]
    if existing:
        image.manifests.remove(existing[0])
        manifest = existing[0]
    image.manifests.insert(min(pos, len(image.manifests)), manifest)
    front[id(image)] = pos + 1
    archive.manifests[manifest.digest] = manifest
    archive.roots_by_manifest[manifest.digest] = image


def _what_is(archive: Archive, image: Image, digest: str) -> str | None:
    """When the digest names something other than a manifest of this image, what it names."""
    label = image_label(image)
    if image.config.descriptor.digest == digest:
        return (f"{short(digest)} is the config digest of {label} (the image ID `docker images` shows), not a "
                f"manifest digest; use the repo digest (`docker inspect -f '{{{{.RepoDigests}}}}'`)")
    for n, layer in enumerate(image.layers):
        if layer.digest == digest:
            return f"{short(digest)} is the blob digest of layer {n} of {label}, not a manifest digest"
        if layer.diff_id == digest:
            return (f"{short(digest)} is the diff_id (uncompressed digest) of layer {n} of {label}, "
                    f"not a manifest digest")
    return None


def _match_one(archive: Archive, image: Image, exp: Expectation, search: _Search,
               front: dict[int, int]) -> ExpectResult | None:
    digest = exp.digest
    # 1. already served (by this image or anything else in the archive)
    if digest in archive.manifests and (archive.roots_by_manifest.get(digest) is image
                                        or any(m.digest == digest for m in image.manifests)):
        m = archive.manifests[digest]
        was_default = image.manifests and image.manifests[0].digest == digest
        _serve(archive, image, m, front)
        how = "the default form" if was_default else "now the default form for its tag"
        return ExpectResult(exp, MATCHED_SERVED, f"{image_label(image)} serves {short(digest)} "
                            f"({m.media_type}, {m.origin}); {how}", archive, image, m, m.origin)
    # 2. one of the serializations of the same content
    table = search.of(image)
    v = table.get(digest)
    if v is not None:
        m = recovered_manifest(image, v)
        _serve(archive, image, m, front)
        return ExpectResult(exp, MATCHED_VARIANT,
                            f"{image_label(image)} now serves {short(digest)} for its tag and by digest: "
                            f"{v.describe()}", archive, image, m, v.slug, v.describe(), searched=len(table))
    return None


def image_label(image: Image) -> str:
    return f"{image.repository}:{image.tags[0]}" if image.tags else image.repository


def _with_upstream(archive: Archive, image: Image, exp: Expectation, search: _Search,
                   front: dict[int, int]) -> ExpectResult:
    """No serialization matched; the user gave the upstream manifest: serve it if it is ours, else diff."""
    data = exp.upstream
    assert data is not None
    searched = len(search.of(image))
    obj = parse_manifest_bytes(data, exp.upstream_source)
    if isinstance(obj.get("manifests"), list) and not isinstance(obj.get("layers"), list):
        return _with_upstream_index(archive, image, exp, obj, search, front)
    diff = diff_manifests(image, data, archive.blobs)
    exact = exp.upstream_exact
    if diff.verdict == SERIALIZATION and exact and not diff.missing:
        mtype = str(obj.get("mediaType") or (mt.DOCKER_MANIFEST if mt.is_docker(diff.upstream_media_type)
                                             else mt.OCI_MANIFEST))
        m = Manifest(mtype, data, exp.digest, "recovered:upstream-manifest")
        _serve(archive, image, m, front)
        return ExpectResult(exp, MATCHED_VARIANT,
                            f"{image_label(image)} now serves the supplied upstream manifest ({exp.upstream_source}): "
                            f"it references exactly this archive's blobs", archive, image, m, "upstream-manifest",
                            "the supplied upstream manifest bytes", diff, searched)
    text = diff.summary
    if not exact:
        text = (f"{exp.upstream_source} hashes to {short(diff.upstream_digest)}, not {short(exp.digest)} "
                f"(re-formatted after download?); compared its fields: " + text)
    return ExpectResult(exp, NO_MATCH, f"{diff.verdict}: {text}", archive, image, None, "", "", diff, searched)


def _with_upstream_index(archive: Archive, image: Image, exp: Expectation, index: dict[str, Any], search: _Search,
                         front: dict[int, int]) -> ExpectResult:
    child = index_child(index, image.platform)
    searched = len(search.of(image))
    if child is None:
        plats = ", ".join(str(d.platform) for d in map(_desc, index.get("manifests") or []) if d and d.platform)
        return ExpectResult(exp, NO_MATCH, f"{short(exp.digest)} is a multi-platform index with no "
                            f"{image.platform or DEFAULT_PLATFORM} child (it has {plats or 'none'})",
                            archive, image, searched=searched)
    sub = _match_one(archive, image, Expectation(child.digest, exp.ref, exp.source), search, front)
    if sub is None:
        return ExpectResult(exp, NO_MATCH,
                            f"{short(exp.digest)} is a multi-platform index; its {child.platform} child "
                            f"{short(child.digest)} matches none of {searched} serializations of this image. "
                            f"Fetch that child manifest (regtui diff ARCHIVE REGISTRY/REPO@{child.digest}) to see "
                            f"why", archive, image, searched=searched)
    if not exp.upstream_exact:
        return ExpectResult(exp, NO_MATCH, f"{exp.upstream_source} does not hash to {short(exp.digest)}; its "
                            f"{child.platform} child {short(child.digest)} is served ({sub.variant}), but the index "
                            f"bytes are unknown", archive, image, sub.manifest, sub.variant, searched=searched)
    # A sparse index: clients pick their platform's child by digest; only ours is here. It becomes an untagged
    # root without children (the child already is a root), so whatever serves the roots serves it by digest.
    assert exp.upstream is not None
    m = Manifest(str(index.get("mediaType") or mt.OCI_INDEX), exp.upstream, exp.digest, "recovered:upstream-index")
    node = ImageIndex(image.repository, [], m, [d for d in map(_desc, index["manifests"]) if d], [],
                      source=f"{exp.upstream_source} (sparse: its {child.platform} child is served by digest)")
    if exp.digest not in archive.manifests:
        archive.roots.append(node)
        archive.manifests[m.digest] = m
        archive.roots_by_manifest[m.digest] = node
    return ExpectResult(exp, MATCHED_VARIANT,
                        f"{short(exp.digest)} is a multi-platform index; serving it by digest, and its "
                        f"{child.platform} child {short(child.digest)} as {sub.variant} "
                        f"(the other platforms' children are not in the archive)", archive, image, m,
                        "upstream-index", f"supplied index; child: {sub.variant_description or sub.variant}",
                        searched=searched)


def _explain(archive: Archive, image: Image, exp: Expectation, searched: int) -> str:
    known = _what_is(archive, image, exp.digest)
    if known:
        return known
    if exp.digest in archive.manifests:
        return (f"{short(exp.digest)} is served by this archive, but for "
                f"{getattr(archive.roots_by_manifest.get(exp.digest), 'repository', '?')}, not this image")
    label = image_label(image)
    stored = [m for m in image.manifests if m.origin == "archive"]
    uncompressed = [n for n, l in enumerate(image.layers) if (l.compression or
                    mt.layer_compression(l.descriptor.media_type)) is None]
    if uncompressed and len(uncompressed) == len(image.layers):
        return (f"{label}'s layers are stored uncompressed (as `docker save` writes them), but a registry "
                f"manifest lists compressed blobs whose digests this archive cannot know; none of {searched} "
                f"serializations match. Export the image with its compressed layers (crane pull, skopeo copy to "
                f"oci-archive) or give the upstream manifest to see the difference")
    where = ("the archive stores its own manifest bytes, and " if stored else "")
    return (f"{where}none of {searched} serializations of {label} (Docker v2 / OCI types, with or without "
            f"mediaType, compact / 2- / 3- / 4-space / tab indent, both key orders, trailing newline or not, "
            f"foreign layer types) hash to {short(exp.digest)}: the upstream manifest references other blobs "
            f"(re-compressed layers, another build or platform) or the digest names a multi-platform index. "
            f"Give the upstream manifest (--expect-manifest FILE, or `regtui diff ARCHIVE REGISTRY/REPO:TAG`) "
            f"to see which")


def apply_to_archives(archives: list[Archive], expectations: list[Expectation]) -> list[ExpectResult]:
    """Apply every expectation across these archives; one result per expectation, in order."""
    pairs = _pairs(archives)
    search = _Search()
    front: dict[int, int] = {}
    results: list[ExpectResult] = []
    for exp in expectations:
        t0 = time.perf_counter()
        result = _apply_one(pairs, exp, search, front)
        result.seconds = time.perf_counter() - t0
        results.append(result)
        if result.archive is not None:
            if getattr(result.archive, _RESULTS_ATTR, None) is None:
                setattr(result.archive, _RESULTS_ATTR, [])
            getattr(result.archive, _RESULTS_ATTR).append(result)
    return results


def _apply_one(pairs: list[tuple[Archive, Image]], exp: Expectation, search: _Search,
               front: dict[int, int]) -> ExpectResult:
    if not pairs:
        return ExpectResult(exp, NO_MATCH, "the archive holds no image")
    chosen, note = _pick_images(pairs, exp)
    # An index digest the archive stores (multi-platform layouts) is served as is.
    for a, _ in pairs:
        root = a.roots_by_manifest.get(exp.digest)
        if isinstance(root, ImageIndex):
            m = a.manifests[exp.digest]
            return ExpectResult(exp, MATCHED_SERVED, f"the archive stores index {short(exp.digest)} "
                                f"({root.repository}); served as is", a, None, m, m.origin)
    for a, img in chosen:
        result = _match_one(a, img, exp, search, front)
        if result is not None:
            if note:
                result.explanation = f"{result.explanation} ({note})"
            return result
    a, img = chosen[0]
    if exp.upstream is not None:
        try:
            result = _with_upstream(a, img, exp, search, front)
        except ExpectError as e:
            return ExpectResult(exp, NO_MATCH, str(e), a, img, searched=len(search.of(img)))
    else:
        searched = sum(len(search.of(i)) for _, i in chosen)
        for other_a, other in chosen:
            known = _what_is(other_a, other, exp.digest)
            if known:
                a, img = other_a, other
                break
        result = ExpectResult(exp, NO_MATCH, _explain(a, img, exp, searched), a, img, searched=searched)
    if note:
        result.explanation = f"{result.explanation} ({note})"
    return result


def apply_expectations(archive: Archive, expectations: list[Expectation]) -> list[ExpectResult]:
    """Serve every expected digest this archive can reproduce (tag default + by digest); explain the rest."""
    return apply_to_archives([archive], expectations)
