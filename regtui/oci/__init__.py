"""The domain: image archives, digests, media types, manifests and verification.

Nothing here imports a UI or server framework; the registry, the TUI and the CLI build on it.
"""

from regtui.oci.errors import ArchiveError
from regtui.oci.model import Archive, Descriptor, Image, ImageIndex, Layer, Location, Manifest, Platform
from regtui.oci.open import open_archive

__all__ = [
    "Archive",
    "ArchiveError",
    "Descriptor",
    "Image",
    "ImageIndex",
    "Layer",
    "Location",
    "Manifest",
    "Platform",
    "open_archive",
]
