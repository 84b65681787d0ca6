"""Per-layer facts that need a full read (uncompressed size, recomputed digest and diff_id), cached per blob.

Runs in a thread worker; `regtui.oci.hashing.hash_blob` does the reading, so the UI never re-implements it. A layer
whose file index is not cached yet is indexed in the same pass (`contents.index_layer`), so the Files view finds it
ready and the layer is inflated once, not twice. A cached index never stands in for the digest check.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from regtui.oci.contents.index import index_layer, load_cached
from regtui.oci.hashing import Cancelled, hash_blob
from regtui.oci.model import Layer


@dataclass(frozen=True)
class LayerFacts:
    digest: str  # the layer's claimed digest (the cache key)
    uncompressed_size: int | None
    digest_ok: bool
    diff_id_ok: bool | None  # None when the archive names no diff_id
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.digest_ok and self.diff_id_ok is not False and not self.error


def measure_layer(layer: Layer, cancel: threading.Event | None = None) -> LayerFacts | None:
    """Read the layer once; None when cancelled or when the archive does not hold it."""
    if layer.location is None:
        return None
    try:
        if load_cached(layer.digest) is None:
            idx = index_layer(layer, cancel=cancel, use_cache=True)
            if idx.digest_ok is not None:  # read here (not a missing blob): the pass measured it all
                diff_ok = None if not layer.diff_id or idx.diff_id is None else idx.diff_id == layer.diff_id
                return LayerFacts(layer.digest, idx.uncompressed_size, idx.digest_ok, diff_ok, idx.inflate_error)
        r = hash_blob(layer.location, compression=layer.compression, want_diff_id=True, cancel=cancel)
    except Cancelled:
        return None
    except OSError as e:
        return LayerFacts(layer.digest, None, False, None, f"cannot read: {e.strerror or e}")
    diff_ok = None if not layer.diff_id or r.diff_id is None else r.diff_id == layer.diff_id
    return LayerFacts(
        layer.digest,
        r.uncompressed_size,
        r.digest == layer.digest and r.size == layer.descriptor.size,
        diff_ok,
        r.inflate_error,
    )
