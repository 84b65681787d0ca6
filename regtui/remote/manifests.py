"""Reading an image from a registry: its manifest (checked against the digest asked for and the one the
registry claims), the platform's child when the tag names an index, and the config blob."""

from __future__ import annotations

import json
from dataclasses import dataclass

from regtui.oci import mediatypes as mt
from regtui.oci.diff import index_child
from regtui.oci.digests import is_digest, sha256_digest
from regtui.oci.model import Platform
from regtui.oci.refs import RemoteRef
from regtui.remote.client import RegistryClient
from regtui.remote.errors import RemoteError, error_text

ACCEPT = ", ".join([mt.OCI_INDEX, mt.DOCKER_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST])
MAX_MANIFEST = 4 << 20  # distribution's own limit for manifest bodies


@dataclass
class Upstream:
    manifest: bytes  # an image manifest
    digest: str
    media_type: str
    index: bytes | None = None  # the index the tag resolved to, when it did
    index_digest: str | None = None
    config: bytes | None = None


async def fetch_manifest(client: RegistryClient, ref: RemoteRef, reference: str) -> tuple[bytes, str, str]:
    """(bytes, digest, media type) of the manifest under `reference` (a tag or digest) in `ref`'s repository."""
    resp = await client.request(
        "GET",
        f"/v2/{ref.path}/manifests/{reference}",
        ref.path,
        f"reading manifest {reference}",
        headers={"Accept": ACCEPT},
        limit=MAX_MANIFEST,
    )
    body = resp.content
    if resp.status_code != 200:
        raise RemoteError(f"{client.host}/{ref.path}:{reference}: {error_text(resp)}")
    digest = sha256_digest(body)
    if is_digest(reference) and reference != digest:
        raise RemoteError(f"{client.host} sent a manifest hashing to {digest} for {reference}")
    claimed = resp.headers.get("docker-content-digest")
    if claimed and claimed != digest and claimed.startswith("sha256:"):
        raise RemoteError(f"{client.host} says Docker-Content-Digest {claimed} but the bytes hash to {digest}")
    return body, digest, resp.headers.get("content-type", "").split(";")[0].strip()


async def fetch_upstream(client: RegistryClient, ref: RemoteRef, platform: Platform | None) -> Upstream:
    """The image manifest `ref` names (the `platform` child of an index), with its config when readable."""
    body, digest, ctype = await fetch_manifest(client, ref, ref.reference)
    try:
        obj = json.loads(body)
    except ValueError:
        raise RemoteError(f"{ref}: the manifest is not JSON") from None
    if not isinstance(obj, dict):
        raise RemoteError(f"{ref}: the manifest is not a JSON object")
    up = Upstream(body, digest, str(obj.get("mediaType") or ctype))
    if isinstance(obj.get("manifests"), list):
        child = index_child(obj, platform)
        if child is None:
            raise RemoteError(f"{ref} is an index without a {platform} child")
        cbody, cdigest, cctype = await fetch_manifest(client, ref, child.digest)
        up = Upstream(cbody, cdigest, cctype, body, digest)
        try:
            obj = json.loads(cbody)
        except ValueError:
            raise RemoteError(f"{ref}@{child.digest}: not JSON") from None
    cfg = (obj.get("config") or {}).get("digest") if isinstance(obj.get("config"), dict) else None
    if isinstance(cfg, str) and is_digest(cfg):
        try:
            resp = await client.request(
                "GET",
                f"/v2/{ref.path}/blobs/{cfg}",
                ref.path,
                "reading the config",
                limit=MAX_MANIFEST,
                follow_redirects=True,
            )
            if resp.status_code == 200 and sha256_digest(resp.content) == cfg:
                up.config = resp.content
        except RemoteError:
            pass  # the config only sharpens the verdict
    return up
