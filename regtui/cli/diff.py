"""`regtui diff ARCHIVE REGISTRY/REPO:TAG`: compare an archive's image with what a registry serves.

The domain work is in `regtui.oci.forensics`; here are the command line and the registry client that fetches the
upstream manifest (anonymous, with the Bearer token flow registries like Docker Hub ask for).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import click

from regtui.cli.common import fail
from regtui.oci import mediatypes as mt
from regtui.oci.digests import is_digest, sha256_digest, short
from regtui.oci.forensics import Expectation, ExpectError, apply_to_archives, diff_manifests, index_child
from regtui.oci.refs import DOCKER_HUB_HOSTS, ImageRef, familiar, is_loopback_host, is_name, is_tag

ACCEPT = ", ".join([mt.OCI_INDEX, mt.DOCKER_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST])
MAX_MANIFEST = 4 << 20  # distribution's own limit for manifest bodies
TIMEOUT = 30.0


# -- fetching the upstream manifest -------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteRef:
    host: str  # as typed, with port
    path: str  # repository path as the registry knows it (library/ added for Docker Hub)
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        s = f"{self.host}/{self.path}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse_remote(text: str) -> RemoteRef:
    """`REGISTRY/REPO[:TAG][@DIGEST]`; a name without a registry means Docker Hub, as docker reads it."""
    text = text.strip()
    for prefix in ("docker://", "https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
        if not is_digest(digest):
            raise ValueError(f"invalid digest {digest!r}")
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, path = first, rest
    else:
        host, path = "registry-1.docker.io", text
    tag = None
    colon = path.rfind(":")
    if colon > path.rfind("/"):
        path, tag = path[:colon], path[colon + 1:]
        if not is_tag(tag):
            raise ValueError(f"invalid tag {tag!r}")
    if not is_name(path):
        raise ValueError(f"invalid repository name {path!r}")
    if host in DOCKER_HUB_HOSTS:
        host = "registry-1.docker.io"
        if "/" not in path:
            path = f"library/{path}"
    if tag is None and digest is None:
        tag = "latest"
    return RemoteRef(host, path, tag, digest)


class FetchError(Exception):
    pass


class RegistryClient:
    """Anonymous pull-side client: HTTPS (or plain HTTP for loopback / --insecure, as docker does)."""

    def __init__(self, host: str, insecure: bool = False, ca: str | None = None):
        import httpx

        self.host = host
        self.plain_ok = insecure or is_loopback_host(host)
        verify: object = ca if ca else (not self.plain_ok)
        self.client = httpx.Client(verify=verify, timeout=TIMEOUT, follow_redirects=True)
        self.base: str | None = None
        self.token: str | None = None

    def close(self) -> None:
        self.client.close()

    def _bases(self) -> list[str]:
        if self.base:
            return [self.base]
        return [f"https://{self.host}"] + ([f"http://{self.host}"] if self.plain_ok else [])

    def get(self, path: str, accept: str | None = None, limit: int = MAX_MANIFEST):
        import httpx

        headers = {"Accept": accept} if accept else {}
        last: Exception | None = None
        for base in self._bases():
            try:
                resp = self._send(base + path, headers, limit)
            except httpx.TransportError as e:
                last = e
                continue
            self.base = base
            return resp
        tls_trouble = any(w in str(last).lower() for w in ("ssl", "tls", "certificate", "wrong_version"))
        hint = " (private CA or plain HTTP? use --ca FILE or --insecure)" if tls_trouble and not self.plain_ok else ""
        raise FetchError(f"cannot reach {self.host}: {_short_error(last)}{hint}")

    def _send(self, url: str, headers: dict, limit: int):
        if self.token:
            headers = {**headers, "Authorization": f"Bearer {self.token}"}
        resp = self._read(url, headers, limit)
        if resp[0] == 401 and not self.token:
            challenge = resp[1].get("www-authenticate", "")
            if challenge.lower().startswith("bearer "):
                self.token = self._token(challenge)
                resp = self._read(url, {**headers, "Authorization": f"Bearer {self.token}"}, limit)
            elif challenge:
                raise FetchError(f"{self.host} asks for credentials ({challenge.split()[0]}); regtui diff pulls "
                                 "anonymously")
        return resp

    def _read(self, url: str, headers: dict, limit: int):
        with self.client.stream("GET", url, headers=headers) as r:
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise FetchError(f"{url}: response larger than {limit} bytes")
            return r.status_code, r.headers, bytes(body)

    def _token(self, challenge: str) -> str:
        import re

        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm:
            raise FetchError(f"{self.host}: Bearer challenge without realm: {challenge}")
        status, _, body = self._read_token(realm, params)
        if status != 200:
            raise FetchError(f"{self.host}: token service {realm} answered {status}")
        try:
            obj = json.loads(body)
            return str(obj.get("token") or obj["access_token"])
        except (ValueError, KeyError, AttributeError):
            raise FetchError(f"{self.host}: token service {realm} sent no token") from None

    def _read_token(self, realm: str, params: dict):
        r = self.client.get(realm, params=params)
        return r.status_code, r.headers, r.content


def _short_error(e: Exception | None) -> str:
    text = str(e) if e else "no answer"
    return text.splitlines()[0][:200] if text else type(e).__name__


def _registry_error(status: int, body: bytes) -> str:
    try:
        errs = json.loads(body).get("errors") or []
        return "; ".join(f"{x.get('code')}: {x.get('message')}" for x in errs) or f"HTTP {status}"
    except (ValueError, AttributeError):
        return f"HTTP {status}"


@dataclass
class Upstream:
    manifest: bytes  # an image manifest
    digest: str
    media_type: str
    index: bytes | None = None  # the index the tag resolved to, when it did
    index_digest: str | None = None
    config: bytes | None = None


def fetch_manifest(client: RegistryClient, ref: RemoteRef, reference: str) -> tuple[bytes, str, str]:
    status, headers, body = client.get(f"/v2/{ref.path}/manifests/{reference}", ACCEPT)
    if status != 200:
        raise FetchError(f"{client.host}/{ref.path}:{reference}: {_registry_error(status, body)}")
    digest = sha256_digest(body)
    if is_digest(reference) and reference != digest:
        raise FetchError(f"{client.host} sent a manifest hashing to {digest} for {reference}")
    claimed = headers.get("docker-content-digest")
    if claimed and claimed != digest and claimed.startswith("sha256:"):
        raise FetchError(f"{client.host} says Docker-Content-Digest {claimed} but the bytes hash to {digest}")
    return body, digest, headers.get("content-type", "").split(";")[0].strip()


def fetch_upstream(client: RegistryClient, ref: RemoteRef, platform) -> Upstream:
    body, digest, ctype = fetch_manifest(client, ref, ref.reference)
    try:
        obj = json.loads(body)
    except ValueError:
        raise FetchError(f"{ref}: the manifest is not JSON") from None
    if not isinstance(obj, dict):
        raise FetchError(f"{ref}: the manifest is not a JSON object")
    up = Upstream(body, digest, str(obj.get("mediaType") or ctype))
    if isinstance(obj.get("manifests"), list):
        child = index_child(obj, platform)
        if child is None:
            raise FetchError(f"{ref} is an index without a {platform} child")
        cbody, cdigest, cctype = fetch_manifest(client, ref, child.digest)
        up = Upstream(cbody, cdigest, cctype, body, digest)
        try:
            obj = json.loads(cbody)
        except ValueError:
            raise FetchError(f"{ref}@{child.digest}: not JSON") from None
    cfg = (obj.get("config") or {}).get("digest") if isinstance(obj.get("config"), dict) else None
    if isinstance(cfg, str) and is_digest(cfg):
        try:
            status, _, cbody = client.get(f"/v2/{ref.path}/blobs/{cfg}", None, limit=MAX_MANIFEST)
            if status == 200 and sha256_digest(cbody) == cfg:
                up.config = cbody
        except FetchError:
            pass  # the config only sharpens the verdict
    return up


@click.command("diff")
@click.argument("archive", type=click.Path())
@click.argument("reference", metavar="REGISTRY/REPO[:TAG|@DIGEST]")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP and unverified TLS (loopback always may).")
@click.option("--ca", type=click.Path(exists=True, dir_okay=False), help="CA certificate to trust for TLS.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(archive, reference, insecure, ca, as_json) -> None:
    """Compare ARCHIVE's image with the manifest a registry serves for REFERENCE.

    Exit 0 when the archive serves (or reproduces) the upstream digest, 1 when it cannot and the difference
    is explained, 2 on errors.
    """
    from regtui.oci import open_archive
    from regtui.oci.errors import ArchiveError

    try:
        ref = parse_remote(reference)
    except ValueError as e:
        fail(f"{reference}: {e} (expected REGISTRY/REPO:TAG, e.g. 127.0.0.1:5000/registry:2.8.1)")
    try:
        arch = open_archive(archive)
    except ArchiveError as e:
        fail(e.line())
    images = arch.images()
    name = familiar(ref.path)
    named = [i for i in images if i.repository == name]
    image = next((i for i in named if ref.tag in i.tags), named[0] if named else images[0])
    client = RegistryClient(ref.host, insecure=insecure, ca=ca)
    try:
        up = fetch_upstream(client, ref, image.platform)
    except FetchError as e:
        fail(str(e))
    finally:
        client.close()
    exp_ref = ImageRef(name, ref.tag, up.digest) if named else None
    exp = Expectation(up.digest, exp_ref, str(ref), up.manifest, f"{ref.host}/{ref.path}@{up.digest}")
    try:
        [result] = apply_to_archives([arch], [exp])
    except ExpectError as e:
        fail(str(e))
    shown = result.diff
    if shown is None and result.image is not None:
        try:
            shown = diff_manifests(result.image, up.manifest, arch.blobs, up.config,
                                   ours=result.manifest or result.image.manifest)
        except ExpectError:
            shown = None
    elif shown is not None and up.config is not None and result.image is not None and not result.matched:
        shown = diff_manifests(result.image, up.manifest, arch.blobs, up.config)
        result.explanation = f"{shown.verdict}: {shown.summary}"
    code = 0 if result.matched else 1
    if as_json:
        out = result.to_dict()
        out["upstream"] = {"reference": str(ref), "digest": up.digest, "mediaType": up.media_type,
                           "index": up.index_digest}
        out["diff"] = shown.to_dict() if shown else None
        click.echo(json.dumps(out, indent=2))
        sys.exit(code)
    click.echo(f"archive   {arch.path} ({arch.format_name}): {result.image_label() or '-'}")
    via = f" (the {image.platform or 'linux/amd64'} child of index {short(up.index_digest)})" if up.index else ""
    click.echo(f"upstream  {ref}: {up.digest}{via}")
    click.echo("")
    if result.status == "matched-by-variant":
        name = result.image.repository if result.image else familiar(ref.path)
        click.echo(f"match: reproduced as {result.variant_description or result.variant}; "
                   f"`regtui serve {archive} --expect {name}@{up.digest}` serves it for the tag and by digest")
        if up.index_digest:
            click.echo(f"       to serve index {short(up.index_digest)} too, save its bytes and add "
                       f"--expect {name}@{up.index_digest} --expect-manifest INDEX.json")
    elif result.matched or shown is None:
        click.echo(("match: " if result.matched else "no match: ") + result.explanation)
    if shown is not None:
        if result.matched:
            click.echo("")
        click.echo(shown.render_text())
    sys.exit(code)
