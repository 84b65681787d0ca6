"""Layer contents: what every layer puts into the image, read from the archive without extracting it.

Design
------
- `tarscan`: a push parser for tar headers (ustar, GNU long names, PAX). It is fed the decompressed stream in
  chunks, never holds file data (only a CRC-32 of each regular file, as dive hashes contents to tell a
  rewritten-but-identical file from a modified one), bounds every metadata block and name, and turns hostile
  input (`..`, absolute names, names over 4 KiB, whiteouts of `/`, a truncated or corrupt tar, more entries than
  `MAX_ENTRIES`) into problems plus an index marked incomplete, never an exception.
- `index`: one layer's entries in columnar arrays (a million entries cost ~60 bytes each plus the path), built
  while `hashing.hash_blob` inflates the blob, so the indexing pass is also the digest/diff_id pass: a layer is
  inflated once and only an index whose digest checked out is cached. The cache lives beside the verify cache
  (`~/.cache/regtui/contents/<digest>.idx`), keyed by layer digest: a second open is a file read and a layer
  shared by two images or archives is indexed once.
- `merge`: the layers applied in order as the OCI image spec's "Applying Changesets" says (whiteouts delete a
  path and what is under it in lower layers, an opaque directory hides its lower contents, a non-directory
  replaces a directory), over one sorted table of every path (depth-first order, so a directory's subtree is
  one contiguous range). Each entry gets a mark: added / modified / unchanged / removed.
- `waste`: dive's numbers, computed as dive's `filetree.Efficiency` and `Image.Analyze` do so they compare:
  per path, every leaf write in every layer counts its size (a whiteout counts 0 for a file and the removed
  subtree for a directory); wasted bytes = the cumulative size of paths seen more than once, user-wasted percent
  = wasted / bytes of the layers above the base, efficiency = sum of minimum sizes / sum of cumulative sizes.
  Opaque directories are not counted (dive ignores `.wh..wh..opq`); `hidden_bytes` says exactly how many stored
  bytes the final image cannot see, opaque dirs included.
- `find`: which layers touch a path or glob, each version's size/mode/mtime; `read`: a file's bytes from a given
  layer, streamed (an uncompressed layer is read at the member's offset), bounded, with sha256 and a text/binary
  verdict. Symbolic and hard links are followed inside the image with a hop limit (loops are reported).

Nothing here imports a UI or server framework; the CLI and the TUI consume `ImageFiles`.
"""

from __future__ import annotations

from regtui.oci.contents.files import load_image_files
from regtui.oci.contents.merge import ImageFiles

__all__ = ["ImageFiles", "load_image_files"]
