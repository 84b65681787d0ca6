"""What the views say about the model, computed without any widget: sizes, summaries, forms, pull commands."""

from __future__ import annotations

import json
from dataclasses import dataclass

from regtui.oci import mediatypes as mt
from regtui.oci.inspect import config_summary as domain_config_summary
from regtui.oci.model import Archive, Image, ImageIndex, Manifest, Root
from regtui.oci.negotiate import (
    DEFAULT_PLATFORM,
    choose,
    default_form,
    parse_accept,
    select_platform,
)
from regtui.oci.units import human_size  # noqa: F401  (the views' one size format)


def media_label(media_type: str) -> str:
    """A short human name for a media type (the full type is shown next to it where it matters)."""
    return {
        mt.DOCKER_MANIFEST: "Docker v2 manifest",
        mt.DOCKER_LIST: "Docker manifest list",
        mt.OCI_MANIFEST: "OCI manifest",
        mt.OCI_INDEX: "OCI index",
    }.get(media_type) or mt.short_name(media_type)


def root_image(root: Root) -> Image | None:
    """The image a view of `root` shows: itself, or an index's default-platform child."""
    if isinstance(root, Image):
        return root
    child = select_platform(root, DEFAULT_PLATFORM)
    if isinstance(child, ImageIndex):
        return root_image(child)
    if child is None:
        imgs = root.images()
        return imgs[0] if imgs else None
    return child


def ref_of(root: Root, image: Image | None = None) -> str:
    """`repo:tag` a client pulls (the index's tag for a platform child), or `repo@digest` when untagged."""
    if root.tags:
        return f"{root.repository}:{root.tags[0]}"
    target = image or root
    return f"{root.repository}@{target.manifests[0].digest}"


def pull_commands(hostport: str, ref: str) -> list[tuple[str, str]]:
    """Ready-to-paste pulls from the embedded registry (plain HTTP on loopback)."""
    name = ref.split("@")[0].rsplit(":", 1)[0].split("/")[-1] or "image"
    full = f"{hostport}/{ref}"
    return [
        ("docker", f"docker pull {full}"),
        ("skopeo", f"skopeo copy --src-tls-verify=false docker://{full} oci:{name}"),
        ("crane", f"crane pull --insecure {full} {name}.tar"),
        ("ctr", f"ctr image pull --plain-http {full}"),
    ]


# What real clients send as Accept (measured; see the project's field notes).
CLIENTS: list[tuple[str, list[str]]] = [
    ("docker / containerd", [mt.DOCKER_MANIFEST, mt.DOCKER_LIST, mt.OCI_MANIFEST, mt.OCI_INDEX, "*/*"]),
    (
        "skopeo / podman",
        [
            mt.OCI_MANIFEST,
            mt.DOCKER_MANIFEST,
            mt.DOCKER_SCHEMA1_SIGNED,
            mt.DOCKER_SCHEMA1,
            mt.DOCKER_LIST,
            mt.OCI_INDEX,
        ],
    ),
    ("crane", [mt.OCI_INDEX, mt.DOCKER_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST]),
    ("Docker v2 only", [mt.DOCKER_MANIFEST]),
    ("OCI only", [mt.OCI_MANIFEST, mt.OCI_INDEX]),
]


@dataclass(frozen=True)
class Form:
    """One document the registry serves for the selection."""

    label: str
    manifest: Manifest
    default: bool  # what a client asking by tag with any Accept gets

    @property
    def origin_label(self) -> str:
        return {
            "archive": "stored in the archive",
            "synthesized-docker": "built by regtui (as crane does)",
            "synthesized-oci": "built by regtui (OCI)",
        }.get(self.manifest.origin, self.manifest.origin)


def manifest_forms(root: Root, image: Image | None) -> list[Form]:
    default = default_form(root)
    forms: list[Form] = []
    seen: set[str] = set()

    def add(label: str, m: Manifest) -> None:
        if m.digest not in seen:
            seen.add(m.digest)
            forms.append(Form(label, m, m.digest == default.digest))

    if isinstance(root, ImageIndex):
        add(f"{media_label(root.manifest.media_type)} (all platforms)", root.manifest)
    if image is not None:
        plat = f" {image.platform}" if isinstance(root, ImageIndex) and image.platform else ""
        for m in image.manifests:
            add(f"{media_label(m.media_type)}{plat}", m)
    return forms


def client_choices(root: Root) -> list[tuple[str, str, str]]:
    """(client, digest served or '—', reason) for each kind of client asking by tag."""
    out = []
    for name, accept in CLIENTS:
        c = choose(root, parse_accept([", ".join(accept)]))
        out.append((name, c.manifest.digest if c.manifest else "—", c.reason))
    return out


def pretty_json(data: bytes) -> str:
    try:
        return json.dumps(json.loads(data), indent=2)
    except (ValueError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")


def config_summary(image: Image) -> list[tuple[str, str]]:
    """Rows for the Config view, from the domain's type-checked summary (configs come from untrusted archives)."""
    c = domain_config_summary(image)

    def words(v) -> str:
        if not v:
            return "—"
        if isinstance(v, list):
            return " ".join(json.dumps(x) if " " in str(x) else str(x) for x in v)
        return str(v)

    plat = "/".join(str(c[k]) for k in ("os", "architecture", "variant") if c[k]) or "—"
    rows = [
        ("platform", plat),
        ("created", str(c["created"] or "—")),
        ("entrypoint", words(c["entrypoint"])),
        ("cmd", words(c["cmd"])),
        ("workdir", str(c["working_dir"] or "—")),
        ("user", str(c["user"] or "—")),
        ("exposed ports", ", ".join(c["exposed_ports"]) or "—"),
        ("volumes", ", ".join(c["volumes"]) or "—"),
    ]
    rows += [("env", e) for e in c["env"]] or [("env", "—")]
    rows += [("label", f"{k}={v}") for k, v in sorted(c["labels"].items())] or [("labels", "—")]
    rows.append(("config digest", c["digest"]))
    rows.append(("history", f"{len(image.history)} entries, {len(image.layers)} layers"))
    return rows


def layer_history(image: Image) -> list[str]:
    """The created_by line of each layer: the layer's own history entry, else the n-th non-empty one."""
    non_empty = [h for h in image.history if not h.empty_layer]
    out = []
    for i, layer in enumerate(image.layers):
        h = layer.history or (non_empty[i] if i < len(non_empty) else None)
        out.append(h.created_by.strip() if h and h.created_by else "")
    return out


def archive_summary(archives: list[Archive]) -> tuple[str, str, int, int]:
    """(names, formats, images, bytes) for the header line."""
    import os

    names = ", ".join(os.path.basename(a.path.rstrip("/")) for a in archives)
    formats = ", ".join(dict.fromkeys(a.format_name for a in archives))
    images = sum(len(a.images()) for a in archives)
    size = sum(a.total_size() for a in archives)
    return names, formats, images, size


@dataclass(frozen=True, eq=False)
class Selection:
    """What the Images tree points at: an archive, one of its roots, and the image the views show."""

    def same(self, other: Selection | None) -> bool:
        """Identity, not equality: comparing archives field by field would walk all their metadata."""
        return (
            other is not None
            and self.archive is other.archive
            and self.root is other.root
            and self.image is other.image
        )

    archive: Archive
    root: Root | None = None
    image: Image | None = None


def known_digests(archives: list[Archive]) -> dict[str, str]:
    """Every digest the open archives can serve, with what it is: for "did you mean" on a 404."""
    out: dict[str, str] = {}

    def walk(root: Root, ref: str) -> None:
        for m in root.manifests:
            out.setdefault(m.digest, f"{media_label(m.media_type)} manifest of {ref}")
        if isinstance(root, ImageIndex):
            for child in root.children:
                walk(child, ref)
        elif isinstance(root, Image):
            out.setdefault(root.config.descriptor.digest, f"config of {ref}")
            for i, layer in enumerate(root.layers, 1):
                out.setdefault(layer.digest, f"layer {i} of {ref}")

    for archive in archives:
        for root in archive.roots:
            walk(root, ref_of(root))
    return out


def nearest_digest(digest: str, known: dict[str, str], most: int = 8) -> tuple[str, int] | None:
    """The known digest of the same algorithm differing from `digest` in the fewest hex digits (at most
    `most`): a typo or a one-character copy error, not a different image."""
    algo, _, hexpart = digest.partition(":")
    best: tuple[str, int] | None = None
    for other in known:
        oalgo, _, ohex = other.partition(":")
        if oalgo != algo or len(ohex) != len(hexpart) or other == digest:
            continue
        n = sum(a != b for a, b in zip(hexpart, ohex, strict=True))
        if n <= most and (best is None or n < best[1]):
            best = (other, n)
    return best
