"""Zarf packages: the artifact a Zarf user holds, opened, verified and served like any image archive.

Design (domain only: no UI or server imports; the registry and the TUI consume the `Archive` this builds):

- **Forms** (`sources.py`). A package is a tar holding `zarf.yaml`, `checksums.txt`, `images/` (an OCI image
  layout), `components/<name>.tar`, `sboms.tar` and maybe a signature. It comes as
  - an uncompressed tar: read in place from tar offsets, exactly as other archives (`TarStore`);
  - a zstd-compressed tar (Zarf's default, `.tar.zst`): not seekable, so it is decompressed once, streaming,
    into the unpack cache (`unpack.py`) and then read as a folder;
  - a split package (`….part000` JSON `{Sha256Sum, Bytes, Count}` + `.part001…`): the parts are read in order
    as one stream, their sizes checked before and the whole file's sha256 after; then as above;
  - an unpacked folder (the same files): read in place (`DirStore`).
- **Cache** (`unpack.py`, `cachedir.py`, `tarstream.py`, `zstdproc.py`). `$XDG_CACHE_HOME/regtui/zarf/<key>/`,
  key = the package file's identity (real path, device, inode, size, mtime). `zstd -d` runs as a child process
  (the zstandard library when the program is missing), fed the package's bytes by a thread; the tar is walked
  as a stream of 4 MiB chunks; each file is written under a temporary folder while a second thread hashes the
  same piece (never a whole blob in memory), and a blob under `images/blobs/sha256/` must hash to its name.
  The folder is renamed into place only when complete, under an `fcntl` lock, so a second regtui opening the
  same package waits and then reuses it; a finished folder answers the next open at once. Free space is
  checked first and the output is bounded (zstd bombs).
  `regtui cache` lists and prunes (`cache_entries`, `prune`).
- **Model** (`config.py`, `package.py`). `zarf.yaml` is parsed with PyYAML's `safe_load`, every field type
  checked: kind, metadata, build, components with the images each needs. `checksums.txt` is parsed strictly
  (a path leaving the package is refused). Images come from `images/` through the layout reader, named by the
  `org.opencontainers.image.base.name` annotation Zarf writes. The `ZarfPackage` hangs off `Archive.package`.
- **Names** (`names.py`). Zarf's agent rewrites `docker.io/library/nginx:1.23.3` to
  `<registry>/library/nginx:1.23.3-zarf-3793515731` (crc32 of the full name without tag); images by digest
  keep their digest under the path. Each image is tagged with its rewritten tag too, so the registry answers
  the original name, its aliases and the rewritten name without knowing about Zarf.
- **Verify** (`verify.py`). Every `checksums.txt` entry streamed (blobs once: the image verification hashes
  them), files present but unlisted, the aggregate checksum (sha256 of `checksums.txt` against
  `build.aggregateChecksum` or `metadata.aggregateChecksum`), component images against `images/index.json`
  both ways, and the signature's presence and format (not its validity).
"""

from regtui.oci.zarf.package import ZarfImage, ZarfPackage

__all__ = ["ZarfImage", "ZarfPackage"]
