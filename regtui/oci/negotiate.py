"""Which manifest a client gets: content negotiation on `Accept`, and platform selection for indexes.

Shared by the registry (what it serves) and the UI (what it says a client will get).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from regtui.oci import mediatypes as mt
from regtui.oci.model import Image, ImageIndex, Manifest, Platform, Root

DEFAULT_PLATFORM = Platform("linux", "amd64")


def parse_accept(values: Iterable[str]) -> list[str]:
    """Media types from any number of Accept header lines or comma lists, in order; q=0 means refused."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            parts = [p.strip() for p in item.split(";")]
            media = parts[0].lower()
            if not media:
                continue
            refused = any(p.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in parts[1:])
            if not refused and media not in out:
                out.append(media)
    return out


@dataclass(frozen=True)
class Choice:
    manifest: Manifest | None
    reason: str  # why this form (or why none), for logs and the UI


def _accepts(accept: list[str], media_type: str) -> bool:
    if not accept or "*/*" in accept or media_type in accept:
        return True
    major = media_type.split("/")[0]
    return f"{major}/*" in accept


def _explicit(accept: list[str], media_type: str) -> bool:
    return media_type in accept


def choose(root: Root, accept: list[str], platform: Platform | None = None) -> Choice:
    """The manifest a client asking by tag with this Accept gets for `root`."""
    if isinstance(root, ImageIndex):
        if _accepts(accept, root.manifest.media_type):
            return Choice(root.manifest, "index accepted")
        child = select_platform(root, platform or DEFAULT_PLATFORM)
        if child is None:
            return Choice(
                None,
                f"the client does not accept {root.manifest.media_type} and no child matches "
                f"platform {platform or DEFAULT_PLATFORM}",
            )
        sub = choose(child, accept, platform)
        return Choice(sub.manifest, f"index not accepted; {child.platform} child: {sub.reason}")
    explicit = [m for m in root.manifests if _explicit(accept, m.media_type)]
    if explicit:
        return Choice(explicit[0], f"{explicit[0].media_type} accepted")
    if not accept or any(a in ("*/*", "application/*") for a in accept):
        return Choice(root.manifests[0], "default form (client accepts any type)")
    wanted = ", ".join(accept) or "nothing"
    return Choice(
        None,
        f"the client accepts {wanted}; this image is served as {' or '.join(m.media_type for m in root.manifests)}",
    )


def select_platform(index: ImageIndex, platform: Platform) -> Image | None:
    best: Image | None = None
    for child in index.children:
        if not isinstance(child, Image) or child.platform is None:
            continue
        p = child.platform
        if p.os == platform.os and p.architecture == platform.architecture:
            if not platform.variant or p.variant == platform.variant:
                return child
            best = best or child
    return best


def default_form(root: Root) -> Manifest:
    """What a modern client (docker, containerd, skopeo: all types accepted) gets by tag."""
    return root.manifests[0]


ALL_TYPES = [mt.DOCKER_MANIFEST, mt.DOCKER_LIST, mt.OCI_MANIFEST, mt.OCI_INDEX]
