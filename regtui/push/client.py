"""The push side of the registry client: blob HEAD / mount / upload (monolithic or chunked) and manifest
HEAD / PUT, on `regtui.remote.RegistryClient` (connection, authentication, retries, one-line errors).

Blob bodies stream from the archive with `os.pread` in a thread, 1 MiB at a time: never extracted, never
held whole in memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from regtui.oci.model import Location, Manifest
from regtui.push.events import Retry
from regtui.push.names import Target
from regtui.remote.auth import Lookup, scope
from regtui.remote.client import RegistryClient
from regtui.remote.credentials import Credentials, docker_credentials
from regtui.remote.errors import RemoteError, Transient, registry_errors

READ_CHUNK = 1 << 20
DEFAULT_CHUNK = 16 << 20

Progress = Callable[[int], None]


@dataclass
class UploadSession:
    url: httpx.URL
    min_chunk: int = 0


class PushClient(RegistryClient):
    """A `RegistryClient` for pushing into one target (`REGISTRY[/PREFIX]`), with pull,push token scopes."""

    def __init__(
        self,
        target: Target,
        *,
        ca: str | None = None,
        insecure: bool = False,
        credentials: Credentials | None = None,
        lookup: Lookup = docker_credentials,
        retries: int = 5,
        backoff: float = 0.5,
        chunk_size: int = DEFAULT_CHUNK,
        timeout: float = 60.0,
        on_event: Callable[[object], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.target = target
        self.chunk_size = chunk_size
        self.on_event = on_event or (lambda e: None)
        super().__init__(
            target.host,
            scheme=target.scheme,
            ca=ca,
            insecure=insecure,
            credentials=credentials,
            lookup=lookup,
            actions="pull,push",
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            on_retry=self._retried,
            transport=transport,
            user_agent="regtui-push",
        )

    def _retried(self, what: str, attempt: int, delay: float, reason: str) -> None:
        self.on_event(Retry(what, attempt, delay, reason))

    # -- blobs ------------------------------------------------------------------------------------------
    async def blob_exists(self, repo: str, digest: str) -> bool:
        resp = await self.request(
            "HEAD", self.url(f"/v2/{repo}/blobs/{digest}"), repo, f"checking blob {digest}", scopes=(scope(repo),)
        )
        if resp.status_code == 200 or resp.is_redirect:  # registries on object storage redirect to it
            return True
        if resp.status_code == 404:
            return False
        raise self.fail(resp, f"checking blob {digest}", repo)

    async def mount(self, repo: str, digest: str, source: str) -> UploadSession | None:
        """Cross-repository mount; None when mounted, else the upload session the registry opened instead."""
        url = self.url(f"/v2/{repo}/blobs/uploads/").copy_merge_params({"mount": digest, "from": source})
        resp = await self.request(
            "POST",
            url,
            repo,
            f"mounting blob {digest} from {source}",
            headers={"Content-Length": "0"},
            scopes=(scope(repo), scope(source, "pull")),
        )
        if resp.status_code == 201:
            return None
        if resp.status_code == 202:
            return self._session(resp, repo)
        raise self.fail(resp, f"mounting blob {digest} from {source}", repo)

    def _session(self, resp: httpx.Response, repo: str) -> UploadSession:
        loc = resp.headers.get("location")
        if not loc:
            raise RemoteError(
                "the registry opened an upload without a Location header",
                where=f"{self.target.host}/{repo}",
                hint="this registry does not follow the distribution spec",
            )
        try:
            min_chunk = int(resp.headers.get("oci-chunk-min-length", "0"))
        except ValueError:
            min_chunk = 0
        return UploadSession(resp.url.join(loc), min_chunk)

    async def start_upload(self, repo: str) -> UploadSession:
        resp = await self.request(
            "POST",
            self.url(f"/v2/{repo}/blobs/uploads/"),
            repo,
            "starting an upload",
            headers={"Content-Length": "0"},
            scopes=(scope(repo),),
        )
        if resp.status_code != 202:
            raise self.fail(resp, "starting an upload", repo)
        return self._session(resp, repo)

    async def upload_blob(
        self, repo: str, digest: str, loc: Location, progress: Progress, session: UploadSession | None = None
    ) -> int:
        """Upload one blob from the archive; returns bytes sent (retries included). `progress(done)` reports
        the bytes of this blob the registry has so far."""
        sent = 0
        attempt = 0
        fd = await asyncio.to_thread(os.open, loc.path, os.O_RDONLY)
        try:
            while True:
                try:
                    if session is None:
                        session = await self.start_upload(repo)
                    n = await self._upload(repo, digest, loc, fd, session, progress)
                    return sent + n
                except _Partial as p:
                    sent += p.sent
                    session = None
                    progress(0)
                    await self.pause(attempt, f"uploading blob {digest}", p.err)
                    attempt += 1
                except Transient as e:
                    session = None
                    progress(0)
                    await self.pause(attempt, f"uploading blob {digest}", e)
                    attempt += 1
        finally:
            os.close(fd)

    def _body(
        self, fd: int, loc: Location, start: int, length: int, counter: list[int], progress: Progress, base: int
    ) -> Callable[[], AsyncIterator[bytes]]:
        async def gen() -> AsyncIterator[bytes]:
            pos, end = start, start + length
            while pos < end:
                n = min(READ_CHUNK, end - pos)
                data = await asyncio.to_thread(os.pread, fd, n, loc.offset + pos)
                if not data:
                    raise RemoteError(
                        f"the archive ends inside blob {loc.member or loc.path}",
                        where=loc.path,
                        hint="the archive is truncated or changed on disk; run regtui verify",
                    )
                yield data
                pos += len(data)
                counter[0] += len(data)
                progress(base + (pos - start))

        return gen

    async def _upload(
        self, repo: str, digest: str, loc: Location, fd: int, session: UploadSession, progress: Progress
    ) -> int:
        size = loc.size
        counter = [0]
        what = f"uploading blob {digest}"
        octet = {"Content-Type": "application/octet-stream"}
        try:
            if size <= max(self.chunk_size, session.min_chunk):
                url = session.url.copy_merge_params({"digest": digest})
                body = self._body(fd, loc, 0, size, counter, progress, 0)
                resp = await self.send(
                    "PUT", url, repo, scopes=(scope(repo),), headers={**octet, "Content-Length": str(size)}, body=body
                )
            else:
                url = await self._chunks(repo, digest, loc, fd, session, progress, counter)
                resp = await self.send(
                    "PUT",
                    url.copy_merge_params({"digest": digest}),
                    repo,
                    scopes=(scope(repo),),
                    headers={"Content-Length": "0"},
                )
        except Transient as e:
            raise _Partial(counter[0], e) from None
        if resp.status_code == 201:
            got = resp.headers.get("docker-content-digest")
            if got and got != digest:
                raise RemoteError(
                    f"the registry stored blob {digest} as {got}",
                    where=f"{self.target.host}/{repo}",
                    hint="the registry rewrote the blob",
                )
            return counter[0]
        code, _ = registry_errors(resp)
        if code == "DIGEST_INVALID" or (resp.status_code == 400 and "digest" in resp.text.lower()):
            raise self.fail(
                resp,
                f"blob {digest} from {loc.member or loc.path} does not match its digest",
                repo,
                hint="the archive is damaged; run regtui verify ARCHIVE",
            )
        if resp.status_code in (404, 416):  # the upload session vanished or moved on: start over
            raise _Partial(counter[0], Transient(f"upload session lost ({resp.status_code})"))
        raise self.fail(resp, what, repo)

    async def _chunks(
        self,
        repo: str,
        digest: str,
        loc: Location,
        fd: int,
        session: UploadSession,
        progress: Progress,
        counter: list[int],
    ) -> httpx.URL:
        """PATCH the blob in chunks; after a broken chunk ask the registry where the upload stands and go on."""
        size = loc.size
        url = session.url
        step = max(self.chunk_size, session.min_chunk)
        offset = 0
        failures = 0
        while offset < size:
            n = min(step, size - offset)
            body = self._body(fd, loc, offset, n, counter, progress, offset)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(n),
                "Content-Range": f"{offset}-{offset + n - 1}",
            }
            try:
                resp = await self.send("PATCH", url, repo, scopes=(scope(repo),), headers=headers, body=body)
            except Transient as e:
                failures += 1
                if failures >= self.retries:
                    raise
                await self.pause(failures - 1, f"uploading blob {digest}", e)
                url, offset = await self._status(repo, url)
                progress(offset)
                continue
            if resp.status_code != 202:
                if resp.status_code in (404, 416):
                    raise Transient(f"upload session lost ({resp.status_code})")
                raise self.fail(resp, f"uploading blob {digest}", repo)
            url = resp.url.join(resp.headers.get("location", str(url)))
            offset = _range_end(resp, offset + n)
        return url

    async def _status(self, repo: str, url: httpx.URL) -> tuple[httpx.URL, int]:
        """Where an interrupted chunked upload stands (GET on the upload URL: 204 + Range)."""
        resp = await self.send("GET", url, repo, scopes=(scope(repo),))
        if resp.status_code != 204:
            raise Transient(f"upload session lost ({resp.status_code})")
        return resp.url.join(resp.headers.get("location", str(url))), _range_end(resp, 0)

    # -- manifests --------------------------------------------------------------------------------------
    async def manifest_digest(self, repo: str, ref: str, media_type: str) -> str | None:
        """Digest the registry has under `ref` (tag or digest) for this media type, None when absent."""
        resp = await self.request(
            "HEAD",
            self.url(f"/v2/{repo}/manifests/{ref}"),
            repo,
            f"checking manifest {ref}",
            headers={"Accept": media_type},
        )
        if resp.status_code == 200:
            return resp.headers.get("docker-content-digest") or (ref if ref.startswith("sha256:") else "")
        if resp.status_code == 404:
            return None
        raise self.fail(resp, f"checking manifest {ref}", repo)

    async def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> str:
        what = f"pushing manifest {repo}:{ref}" if not ref.startswith("sha256:") else f"pushing manifest {ref}"
        resp = await self.request(
            "PUT",
            self.url(f"/v2/{repo}/manifests/{ref}"),
            repo,
            what,
            headers={"Content-Type": manifest.media_type},
            body=lambda: manifest.data,
        )
        if resp.status_code not in (200, 201, 202):
            code, _ = registry_errors(resp)
            if code in ("MANIFEST_INVALID", "UNSUPPORTED") or resp.status_code == 415:
                raise self.fail(
                    resp,
                    f"{what}: the registry refused this {manifest.media_type}",
                    repo,
                    hint="it does not accept that media type or this manifest's content; push to a "
                    "registry that supports it, or convert the archive (e.g. skopeo copy "
                    "--format)",
                )
            if code == "MANIFEST_BLOB_UNKNOWN" or code == "BLOB_UNKNOWN":
                raise self.fail(resp, what, repo, hint="a blob the manifest references is missing in the registry")
            raise self.fail(resp, what, repo)
        got = resp.headers.get("docker-content-digest")
        if got and got != manifest.digest:
            raise RemoteError(
                f"the registry stored manifest {manifest.digest} as {got}",
                where=f"{self.target.host}/{repo}",
                hint="the registry rewrote the manifest; digests would not be preserved",
            )
        return got or manifest.digest


class _Partial(Exception):
    """A blob upload broke after sending `sent` bytes."""

    def __init__(self, sent: int, err: Transient):
        self.sent = sent
        self.err = err


def _range_end(resp: httpx.Response, default: int) -> int:
    """Next offset from a `Range: 0-<last>` header (distribution omits the `bytes=` prefix)."""
    r = resp.headers.get("range", "")
    _, _, last = r.rpartition("-")
    try:
        return int(last) + 1
    except ValueError:
        return default
