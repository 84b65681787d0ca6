"""Image references: the distribution grammar, and docker's normalisation of names.

`docker.io/library/registry`, `library/registry` and `registry` name the same repository; we keep the
familiar (shortest) form and derive the aliases a client may ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from regtui.oci.digests import is_digest, is_digest_syntax

# distribution-spec: <name> and <reference> grammars.
NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{NAME_COMPONENT}(?:/{NAME_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME = 255

DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKER_HUB_API = "registry-1.docker.io"  # the host Docker Hub's registry API answers on


def is_name(value: str) -> bool:
    return len(value) <= MAX_NAME and bool(NAME_RE.match(value))


def is_tag(value: str) -> bool:
    return bool(TAG_RE.match(value))


def is_domain(first: str) -> bool:
    """Whether the first path component of a reference names a registry host (docker's rule, plus IPv6)."""
    return "." in first or ":" in first or first == "localhost" or first != first.lower() or first.startswith("[")


def registry_host(host: str) -> str:
    """`host[:port]` as a client dials it: lowercase, Docker Hub's names mapped to its API host."""
    host = host.lower()
    return DOCKER_HUB_API if host in DOCKER_HUB_HOSTS else host


def familiar(name: str) -> str:
    """The shortest form of a repository name: no docker.io host, no implicit `library/`."""
    parts = name.split("/")
    if len(parts) > 1 and parts[0] in DOCKER_HUB_HOSTS:
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts)


def aliases(name: str) -> list[str]:
    """Every repository name under which a client may ask for `name`, familiar form first."""
    fam = familiar(name)
    parts = fam.split("/")
    out = [fam]
    if len(parts) > 1 and is_domain(parts[0]):
        out.append("/".join(parts[1:]))  # served without its original host, as a mirror would be
    else:
        full = f"library/{fam}" if len(parts) == 1 else fam
        if full != fam:
            out.append(full)
        out.append(f"docker.io/{full}")
    return out


def _reference(name: str, tag: str | None, digest: str | None) -> str:
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@dataclass(frozen=True)
class ImageRef:
    """A parsed `name[:tag][@digest]`; name in familiar form."""

    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return _reference(self.name, self.tag, self.digest)


def parse_ref(text: str, *, default_tag: str | None = None) -> ImageRef:
    """Parse an image reference; raises ValueError with a precise message."""
    text = text.strip()
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
        if not is_digest_syntax(digest):
            raise ValueError(f"invalid digest {digest!r} in image reference")
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not is_tag(tag):
            raise ValueError(f"invalid tag {tag!r} in image reference")
    if not text:
        raise ValueError("empty repository name in image reference")
    parts = text.split("/")
    path = parts[1:] if len(parts) > 1 and is_domain(parts[0]) else parts
    if not is_name("/".join(path)):
        raise ValueError(f"invalid repository name {text!r} (lowercase letters, digits and . _ - / only)")
    if tag is None and digest is None:
        tag = default_tag
    return ImageRef(familiar(text), tag, digest)


def host_name(host: str) -> str:
    """The name part of `host[:port]` or `[v6]:port`."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(host: str) -> bool:
    """Docker speaks plain HTTP to loopback registries without being told; so do we."""
    import ipaddress

    name = host_name(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RemoteRef:
    """A reference to an image in a registry: `host[:port]/path[:tag][@digest]`, as a client dials it."""

    host: str  # registry_host(): with port, Docker Hub as registry-1.docker.io
    path: str  # the repository as the registry knows it (`library/` added for Docker Hub)
    tag: str | None
    digest: str | None
    scheme: str | None = None  # "http" / "https" when written

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return _reference(f"{self.host}/{self.path}", self.tag, self.digest)


def split_scheme(text: str) -> tuple[str | None, str]:
    """(`http`/`https` or None, the rest) of `[docker://|http://|https://]rest`."""
    for prefix, scheme in (("docker://", None), ("https://", "https"), ("http://", "http")):
        if text[: len(prefix)].lower() == prefix:
            return scheme, text[len(prefix) :]
    return None, text


def parse_remote(text: str, *, default_tag: str = "latest") -> RemoteRef:
    """`[REGISTRY/]REPO[:TAG][@DIGEST]`; without a registry, Docker Hub (and `library/`), as docker reads it.

    Raises ValueError with a precise message.
    """
    scheme, text = split_scheme(text.strip())
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
        if not is_digest(digest):  # one we can verify: the bytes fetched must hash to it
            raise ValueError(f"invalid digest {digest!r}")
    first, _, rest = text.partition("/")
    if rest and is_domain(first):
        if first.startswith("[") and "]" not in first:
            raise ValueError(f"unterminated IPv6 address {first!r} (write [::1]:5000)")
        host, path = registry_host(first), rest
    else:
        host, path = DOCKER_HUB_API, text
    tag = None
    colon = path.rfind(":")
    if colon > path.rfind("/"):
        path, tag = path[:colon], path[colon + 1 :]
        if not is_tag(tag):
            raise ValueError(f"invalid tag {tag!r}")
    if not is_name(path):
        raise ValueError(f"invalid repository name {path!r}")
    if host == DOCKER_HUB_API and "/" not in path:
        path = f"library/{path}"
    if tag is None and digest is None:
        tag = default_tag
    return RemoteRef(host, path, tag, digest, scheme)
