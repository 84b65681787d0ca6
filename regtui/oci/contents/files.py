"""Load an image's files: index every layer (from the cache when it can), then merge them."""

from __future__ import annotations

import threading
from collections.abc import Callable

from regtui.oci.contents.index import LayerIndex, index_layer
from regtui.oci.contents.merge import ImageFiles
from regtui.oci.model import Image

Progress = Callable[[int, int, str], None]  # (bytes done, bytes total, what is being indexed)


def load_image_files(
    image: Image,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    use_cache: bool = True,
) -> ImageFiles:
    """Raises `hashing.Cancelled` when cancelled; damaged layers give an index marked incomplete."""
    total = sum(l.location.size for l in image.layers if l.location)
    done = 0
    seen: dict[str, LayerIndex] = {}
    indexes: list[LayerIndex] = []
    for n, layer in enumerate(image.layers):
        if layer.digest in seen:  # the same layer twice in one image: indexed once
            indexes.append(seen[layer.digest])
            continue
        what = f"layer {n} {layer.digest[:19]}"

        def step(k: int, what: str = what) -> None:
            nonlocal done
            done += k
            if progress:
                progress(done, total, what)

        idx = index_layer(layer, progress=step, cancel=cancel, use_cache=use_cache)
        seen[layer.digest] = idx
        indexes.append(idx)
    return ImageFiles(indexes, list(image.layers))
