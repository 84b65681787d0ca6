"""The distribution API's URL shapes, parsed once per request (names may contain slashes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from regtui.registry.events import RequestKind

RouteKind = Literal["base", "redirect", "catalog", "manifest", "blob", "upload", "tags", "referrers", "other"]

_PATTERNS: list[tuple[RouteKind, re.Pattern[str]]] = [
    ("manifest", re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")),
    ("upload", re.compile(r"^/v2/(?P<name>.+)/blobs/uploads(?:/(?P<ref>[^/]*))?$")),
    ("blob", re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<ref>[^/]+)$")),
    ("tags", re.compile(r"^/v2/(?P<name>.+)/tags/list$")),
    ("referrers", re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<ref>[^/]+)$")),
]


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    name: str | None = None
    reference: str | None = None

    @property
    def event_kind(self) -> RequestKind:
        return self.kind if self.kind in ("base", "manifest", "blob", "tags", "catalog", "referrers") else "other"


def parse_path(path: str) -> Route:
    if path == "/v2/":
        return Route("base")
    if path == "/v2":
        return Route("redirect")
    if path == "/v2/_catalog":
        return Route("catalog")
    if path.startswith("/v2/"):
        for kind, pattern in _PATTERNS:
            m = pattern.match(path)
            if m:
                return Route(kind, m.group("name"), m.groupdict().get("ref"))
    return Route("other")
