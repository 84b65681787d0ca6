"""The registry's request core, free of any web framework: lookups, negotiation, conditionals and ranges.

`app.py` (Quart) and `fast.py` (raw ASGI) both answer from these functions and only write what they return;
neither imports the other's internals. Handlers raise `RegistryError` for every spec error.

Does Quart still earn its place? Measured in process (ASGI calls, no sockets, 3,000 GETs each after warm-up,
the 2-core machine loaded by other work; `bench/quart_cost.py`):

| request            | raw fast path | through Quart |
|--------------------|---------------|---------------|
| GET /v2/           | 10 µs         | 175 µs        |
| manifest by tag    | 31 µs         | 429 µs        |
| tags/list (Quart)  | 198-334 µs (both through Quart: the spread is noise) |

Quart costs ~0.2-0.4 ms a request, 10-17x the raw path. The requests a pull makes (manifests, blobs, /v2/) no
longer pay it; what still goes through Quart (tags/list, _catalog, referrers, redirects, errors, writes, and
everything under --htpasswd) is a handful of requests per pull at most. So it stays for now: it brings
routing, HEAD bodies and error handling those routes rely on, and with this core, dropping it means writing
those few replies in fast.py, not moving logic. Move --htpasswd onto the fast path first if auth pulls matter.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from regtui.oci.digests import is_digest, is_digest_syntax
from regtui.oci.model import Fingerprint, Manifest, Platform, Root
from regtui.oci.negotiate import DEFAULT_PLATFORM, choose, parse_accept
from regtui.oci.refs import is_name, is_tag
from regtui.registry.auth import BasicAuth
from regtui.registry.blobs import StaleArchive, Unsatisfiable, open_fresh, parse_range
from regtui.registry.catalog import Blob, Catalog, Repo, blob_count
from regtui.registry.errors import RegistryError
from regtui.registry.events import EventBus, ServerLog
from regtui.registry.observe import PullStart, PullTracker, RequestEvents, RequestInfo
from regtui.registry.routes import Route

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
READ_METHODS = ("GET", "HEAD")
BLOB_CACHE = "max-age=31536000"
JSON = "application/json; charset=utf-8"

_UA_OS = re.compile(r"(?:^|\s)os/([A-Za-z0-9_.-]+)")
_UA_ARCH = re.compile(r"(?:^|\s)arch/([A-Za-z0-9_.-]+)")


@dataclass
class RegistryState:
    """What the app serves and where it reports; `app.extensions["regtui"]`."""

    bus: EventBus
    catalog: Catalog
    pulls: PullTracker
    auth: BasicAuth | None
    events: RequestEvents | None = None
    refuse: Mapping[str, str] = field(default_factory=dict)  # blob digest -> why its bytes cannot verify


def repo_of(catalog: Catalog, name: str) -> Repo:
    if not is_name(name):
        raise RegistryError(
            "NAME_INVALID",
            f"invalid repository name {name!r}: lowercase letters, digits and "
            "separators (. _ __ - /) only, at most 255 characters",
        )
    repo = catalog.lookup(name)
    if repo is None:
        raise RegistryError("NAME_UNKNOWN", f"repository {name!r} is not in the served archives")
    return repo


def digest_of(reference: str) -> str:
    if not is_digest_syntax(reference):
        raise RegistryError(
            "DIGEST_INVALID", f"invalid digest {reference!r}: expected algorithm:hex, e.g. sha256:<64 hex digits>"
        )
    if not is_digest(reference):
        raise RegistryError(
            "DIGEST_INVALID",
            f"unsupported or malformed digest {reference!r}: sha256 (64 hex) or sha512 (128 hex) expected",
        )
    return reference


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    for item in header.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        if item == etag or item.strip('"') == etag.strip('"'):
            return True
    return False


def client_platform(user_agent: str) -> Platform:
    """docker and containerd's cri put `os/<os> arch/<arch>` in the User-Agent; others get linux/amd64."""
    os_m, arch_m = _UA_OS.search(user_agent), _UA_ARCH.search(user_agent)
    if os_m and arch_m:
        return Platform(os_m.group(1), arch_m.group(1))
    return DEFAULT_PLATFORM


# -- manifests -------------------------------------------------------------------------------------------
def manifest_for(repo: Repo, route: Route, headers) -> tuple[Manifest, Root]:
    """The manifest a GET/HEAD of `route` gets (`headers`: .get/.getlist, as Werkzeug's); raises RegistryError."""
    ref = route.reference or ""
    if ":" in ref:
        digest = digest_of(ref)
        found = repo.manifests.get(digest)
        if found is None:
            raise RegistryError("MANIFEST_UNKNOWN", f"no manifest {digest} in repository {route.name!r}")
        return found[1], found[2]
    if not is_tag(ref):  # TAG_INVALID is the push side's code; a read finds no such manifest (OCI conformance)
        raise RegistryError(
            "MANIFEST_UNKNOWN", f"invalid tag {ref!r}: up to 128 of [A-Za-z0-9_.-], not starting with . or -"
        )
    tagged = repo.tags.get(ref)
    if tagged is None:
        raise RegistryError("MANIFEST_UNKNOWN", f"no tag {ref!r} in repository {route.name!r}")
    accept = parse_accept(headers.getlist("Accept"))
    choice = choose(tagged[1], accept, client_platform(headers.get("User-Agent", "")))
    if choice.manifest is None:
        raise RegistryError(
            "MANIFEST_UNKNOWN", f"{route.name}:{ref} exists, but not in a form this client accepts: {choice.reason}"
        )
    return choice.manifest, repo.manifests[choice.manifest.digest][2]


def manifest_answer(repo: Repo, route: Route, headers, info: RequestInfo) -> tuple[Manifest, str, bool]:
    """The manifest a GET/HEAD answers, its ETag, and whether the client already has it (304); a manifest
    served notes the pull it starts on `info`."""
    manifest, node = manifest_for(repo, route, headers)
    etag = f'"{manifest.digest}"'
    if etag_matches(headers.get("If-None-Match"), etag):
        return manifest, etag, True
    blobs, children = blob_count(node)
    info.pull = PullStart(route.name or "", route.reference or "", manifest.digest, blobs, children)
    return manifest, etag, False


def manifest_headers(manifest: Manifest, etag: str) -> dict[str, str]:
    """A manifest reply's headers besides Content-Type and Content-Length, which each path writes with the body."""
    return {"Docker-Content-Digest": manifest.digest, "ETag": etag}


def not_modified_headers(etag: str, digest: str, cache: str | None = None) -> dict[str, str]:
    """A 304's headers (no body, no Content-Length or Content-Type), written alike by both request paths."""
    out = {"ETag": etag, "Docker-Content-Digest": digest}
    if cache:
        out["Cache-Control"] = cache
    return out


# -- blobs -----------------------------------------------------------------------------------------------
@dataclass
class BlobPlan:
    """What a GET/HEAD of a blob answers: 304 (`not_modified`), or `status` with `headers` for [start, +length)."""

    blob: Blob
    digest: str
    etag: str
    headers: dict
    not_modified: bool = False
    status: int = 200
    start: int = 0
    length: int = 0


def blob_plan(repo: Repo, route: Route, headers, refuse: Mapping[str, str] | None = None) -> BlobPlan:
    """Lookup, conditional and Range handling of a blob request; raises RegistryError."""
    digest = digest_of(route.reference or "")
    blob = repo.blobs.get(digest)
    if blob is None:
        raise RegistryError("BLOB_UNKNOWN", f"blob {digest} is not referenced by repository {route.name!r}")
    if refuse and digest in refuse:  # 404, not 5xx: clients would retry bytes that can never verify
        raise RegistryError(
            "BLOB_UNKNOWN",
            f"blob {digest} is in the archive but failed verification "
            f"({refuse[digest]}); refusing to send bytes that cannot match it",
        )
    etag = f'"{digest}"'
    out = {
        "Docker-Content-Digest": digest,
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": BLOB_CACHE,
    }
    if etag_matches(headers.get("If-None-Match"), etag):
        return BlobPlan(blob, digest, etag, out, not_modified=True)
    byte_range = None
    if_range = headers.get("If-Range")
    if if_range is None or if_range.strip() == etag:  # a date or another tag: send the whole blob
        try:
            byte_range = parse_range(headers.get("Range"), blob.size)
        except Unsatisfiable:
            err = RegistryError(
                "RANGE_INVALID",
                f"range {headers.get('Range')!r} is outside the blob's {blob.size} bytes",
                headers={**out, "Content-Range": f"bytes */{blob.size}"},
            )
            raise err from None
    if byte_range is None:
        return BlobPlan(blob, digest, etag, out, length=blob.size)
    out["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{blob.size}"
    return BlobPlan(blob, digest, etag, out, status=206, start=byte_range.start, length=byte_range.length)


def close_opened(opening: asyncio.Future) -> None:
    if not opening.cancelled() and opening.exception() is None:
        os.close(opening.result())


async def open_blob(path: str, expected: Fingerprint | None) -> int:
    """Open the archive in a thread and check it (StaleArchive if it changed); cancel-safe: a client that
    leaves while the thread opens the file does not leak the descriptor the thread still returns."""
    opening = asyncio.get_running_loop().run_in_executor(None, open_fresh, path, expected)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(close_opened)
        raise


def refused(state: RegistryState, blob: Blob, e: StaleArchive) -> None:
    state.bus.publish(ServerLog("error", f"refusing blob {blob.digest}: {e}", time.time()))
    raise RegistryError("UNAVAILABLE", f"{e}; refusing to serve possibly wrong bytes") from None


def short_read(state: RegistryState, blob: Blob, missing: int, info: RequestInfo) -> None:
    info.ended_by = "server stopped sending: the archive ended early (changed on disk)"
    where = blob.location.path if blob.location is not None else "the archive"
    state.bus.publish(
        ServerLog(
            "error",
            f"{where} ended {missing} bytes early while sending {blob.digest}; the archive changed on disk",
            time.time(),
        )
    )


def changed(state: RegistryState, blob: Blob, e: StaleArchive, info: RequestInfo) -> None:
    info.ended_by = "server stopped sending: the archive changed on disk"
    state.bus.publish(ServerLog("error", f"stopped sending {blob.digest}: {e}", time.time()))
