"""Image references: the distribution grammar, and docker's normalisation of names.

`docker.io/library/registry`, `library/registry` and `registry` name the same repository; we keep the
familiar (shortest) form and derive the aliases a client may ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from regtui.oci.digests import is_digest_syntax

# distribution-spec: <name> and <reference> grammars.
NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{NAME_COMPONENT}(?:/{NAME_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME = 255

DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def is_name(value: str) -> bool:
    return len(value) <= MAX_NAME and bool(NAME_RE.match(value))


def is_tag(value: str) -> bool:
    return bool(TAG_RE.match(value))


def _has_domain(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


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
    if len(parts) > 1 and _has_domain(parts[0]):
        out.append("/".join(parts[1:]))  # served without its original host, as a mirror would be
    else:
        full = f"library/{fam}" if len(parts) == 1 else fam
        if full != fam:
            out.append(full)
        out.append(f"docker.io/{full}")
    return out


@dataclass(frozen=True)
class ImageRef:
    """A parsed `name[:tag][@digest]`; name in familiar form."""

    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


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
    path = parts[1:] if len(parts) > 1 and _has_domain(parts[0]) else parts
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
