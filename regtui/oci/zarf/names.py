"""The image names a Zarf cluster uses: Zarf's agent rewrites every pod image to its in-cluster registry.

`docker.io/library/nginx:1.23.3` becomes `<registry>/library/nginx:1.23.3-zarf-3793515731`: the path without
its host, the tag plus `-zarf-` and the CRC-32 (IEEE, decimal) of the full name without tag, so that two hosts'
`org/app:1` stay apart. An image referenced by digest keeps just the digest: `<registry>/library/nginx@sha256:…`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from regtui.oci.refs import parse_ref


@dataclass(frozen=True)
class ZarfName:
    original: str  # as the package lists it
    full_name: str  # docker.io/library/nginx
    path: str  # library/nginx: the repository in the Zarf registry
    tag: str | None
    digest: str | None

    @property
    def crc(self) -> int:
        return zlib.crc32(self.full_name.encode())

    @property
    def zarf_tag(self) -> str | None:
        """The tag Zarf pushes and rewrites pods to; None for digest references (served by digest)."""
        return None if self.digest or not self.tag else f"{self.tag}-zarf-{self.crc}"

    @property
    def rewritten(self) -> str:
        """The reference without the registry host, e.g. `library/nginx:1.23.3-zarf-3793515731`."""
        return f"{self.path}@{self.digest}" if self.digest else f"{self.path}:{self.zarf_tag}"


def zarf_name(text: str) -> ZarfName:
    """Parse an image reference as Zarf does (`latest` when no tag or digest); raises ValueError."""
    ref = parse_ref(text, default_tag="latest")
    parts = ref.name.split("/")
    first = parts[0]
    has_domain = len(parts) > 1 and ("." in first or ":" in first or first == "localhost")
    if has_domain:
        full, path = ref.name, "/".join(parts[1:])
    else:
        path = ref.name if len(parts) > 1 else f"library/{ref.name}"
        full = f"docker.io/{path}"
    return ZarfName(text, full, path, ref.tag, ref.digest)
