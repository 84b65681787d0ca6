"""An OCI distribution push client on httpx: ping, blob HEAD / mount / upload (monolithic or chunked), manifest
HEAD / PUT, with authentication, retries and one-line errors.

Blob bodies stream from the archive with `os.pread` in a thread, 1 MiB at a time: never extracted, never
held whole in memory.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from regtui.oci.digests import short
from regtui.oci.model import Location, Manifest
from regtui.push.auth import Authenticator, Credentials, docker_credentials, parse_challenge, scope
from regtui.push.errors import PushError
from regtui.push.events import Retry
from regtui.push.names import Target

READ_CHUNK = 1 << 20
DEFAULT_CHUNK = 16 << 20
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Transient(Exception):
    """A failure worth retrying: a broken connection, 429 or 5xx."""

    def __init__(self, reason: str, retry_after: float | None = None):
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


def _ssl_cause(exc: BaseException) -> BaseException | None:
    seen = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _errno_cause(exc: BaseException) -> OSError | None:
    """The most specific OSError behind an httpx error (anyio wraps the refusal in a generic OSError)."""
    found = None
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, ssl.SSLError):
            if isinstance(seen, (ConnectionError, socket.gaierror)):
                return seen
            found = found or seen
        seen = seen.__cause__ or seen.__context__
    return found


def registry_errors(resp: httpx.Response) -> tuple[str, str]:
    """(code, message) of a distribution error body, or ('', short text)."""
    try:
        errs = resp.json().get("errors") or []
        e = errs[0]
        msg = str(e.get("message", ""))
        detail = e.get("detail")
        if isinstance(detail, str) and detail:
            msg += f" ({detail[:120]})"
        return str(e.get("code", "")), msg
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        return "", resp.text[:120].strip() if resp.content else ""


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return min(30.0, float(resp.headers.get("retry-after", "")))
    except ValueError:
        return None


@dataclass
class UploadSession:
    url: httpx.URL
    min_chunk: int = 0


class RegistryClient:
    """One registry, one httpx.AsyncClient; safe to share among concurrent tasks."""

    def __init__(
        self,
        target: Target,
        *,
        ca: str | None = None,
        insecure: bool = False,
        credentials: Credentials | None = None,
        lookup=docker_credentials,
        retries: int = 5,
        backoff: float = 0.5,
        chunk_size: int = DEFAULT_CHUNK,
        timeout: float = 60.0,
        on_event: Callable[[object], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.target = target
        self.ca = ca
        self.insecure = insecure
        self.auth = Authenticator(target.host, credentials, lookup)
        self.retries = retries
        self.backoff = backoff
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.on_event = on_event or (lambda e: None)
        self.transport = transport  # for fault injection in tests; None = httpx's own
        self.base: httpx.URL | None = None
        self._client: httpx.AsyncClient | None = None

    # -- connection -----------------------------------------------------------------------------------
    def _schemes(self) -> list[str]:
        if self.target.scheme:
            return [self.target.scheme]
        if self.ca:
            return ["https"]
        if self.target.is_loopback:
            return ["http"]  # like docker: loopback registries are insecure by default
        return ["https", "http"] if self.insecure else ["https"]

    def _verify(self):
        if self.ca:
            try:
                return ssl.create_default_context(cafile=self.ca)
            except (OSError, ssl.SSLError) as e:
                raise PushError(f"cannot load CA certificates from {self.ca}: {e}",
                                hint="--ca takes a PEM file with the registry's CA certificate") from None
        return not self.insecure

    async def __aenter__(self) -> RegistryClient:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def connect(self) -> None:
        """Find the scheme that answers `/v2/`, learn its authentication, check credentials if any."""
        verify = self._verify()
        schemes = self._schemes()
        self._client = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(self.timeout, connect=15.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"User-Agent": "regtui-push"},
            follow_redirects=False,
            transport=self.transport,
        )
        last: PushError | None = None
        for s in schemes:
            base = httpx.URL(f"{s}://{self.target.host}")
            try:
                resp = await self._ping(base)
            except httpx.HTTPError as e:
                last = self._connect_error(e, s)
                if s == "https" and "http" in schemes and _ssl_cause(e) is not None:
                    continue  # --insecure: fall back to plain HTTP like docker
                raise last from None
            self.base = base
            await self._check_ping(resp)
            return
        assert last is not None
        raise last

    async def _ping(self, base: httpx.URL) -> httpx.Response:
        """GET /v2/, retried on 429/5xx and on connections that break after connecting (not on refusals)."""
        attempt = 0
        while True:
            try:
                resp = await self._client.get(base.join("/v2/"))
                if resp.status_code not in TRANSIENT_STATUS:
                    return resp
                err = Transient(f"GET /v2/ answered {resp.status_code}", _retry_after(resp))
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as e:
                if _ssl_cause(e) is not None or attempt + 1 >= self.retries:
                    raise
                err = Transient(f"{e.__class__.__name__}: {e}")
            if attempt + 1 >= self.retries:
                return resp
            await self._pause(attempt, f"contacting {self.target.host}", err)
            attempt += 1

    async def _check_ping(self, resp: httpx.Response) -> None:
        host = self.target.host
        if resp.status_code == 400 and b"HTTPS server" in resp.content:
            raise PushError(f"{host} speaks HTTPS, not plain HTTP", where=host,
                            hint=f"write https://{host} (with --ca FILE if its certificate is private)")
        if resp.status_code == 401:
            self.auth.challenge = parse_challenge(resp.headers.get("www-authenticate", ""))
            if self.auth.challenge is None or self.auth.credentials() is None:
                return  # anonymous for now; a later 401 says what is missing
            # Check the credentials now, so a wrong password fails before any upload.
            if self.auth.challenge.scheme == "bearer":
                await self.auth.fetch_token(self._client, ())
                return
            again = await self._client.get(self.base.join("/v2/"), headers=self.auth.header(()))
            if again.status_code in (401, 403):
                raise self.auth.rejected(again.status_code, registry_errors(again)[1], None)
            return
        if resp.status_code == 404:
            raise PushError(f"{host} does not serve the registry API (GET /v2/ answered 404)", where=host,
                            hint="check the registry address and port")
        if resp.status_code >= 300 or resp.status_code < 200:
            code, msg = registry_errors(resp)
            raise PushError(f"{host} answered GET /v2/ with {resp.status_code} {code} {msg}".rstrip(), where=host,
                            hint="check the registry address; is it a registry?")

    def _connect_error(self, e: httpx.HTTPError, scheme: str) -> PushError:
        host = self.target.host
        sslerr = _ssl_cause(e)
        if isinstance(sslerr, ssl.SSLCertVerificationError):
            return PushError(f"TLS certificate verification failed: {sslerr.verify_message or sslerr.reason}",
                             where=host, hint="pass --ca FILE with the registry's CA certificate, or --insecure")
        if sslerr is not None:
            reason = getattr(sslerr, "reason", None) or str(sslerr)
            hint = "the registry may speak plain HTTP: write http://HOST or use --insecure"
            return PushError(f"TLS handshake failed: {reason}", where=host, hint=hint)
        oserr = _errno_cause(e)
        if isinstance(oserr, ConnectionRefusedError):
            return PushError("connection refused", where=host, hint="is the registry running, on this port?")
        if isinstance(oserr, socket.gaierror):
            return PushError("unknown host (name does not resolve)", where=host, hint="check the registry address")
        if isinstance(e, httpx.TimeoutException):
            return PushError("no answer (timed out)", where=host, hint="check the address and the network")
        return PushError(f"cannot connect over {scheme}: {e.__class__.__name__}: {e or oserr}", where=host,
                         hint="check the registry address")

    # -- requests ---------------------------------------------------------------------------------------
    def url(self, path: str) -> httpx.URL:
        assert self.base is not None, "connect() first"
        return self.base.join(path)

    async def _send(self, method: str, url: httpx.URL, scopes: tuple[str, ...], repo: str | None, *,
                    headers: dict | None = None, body: Callable[[], object] | None = None) -> httpx.Response:
        """One request, answering a 401 once; raises Transient for retryable failures, PushError for auth."""
        assert self._client is not None
        for auth_round in range(2):
            ch = self.auth.challenge
            if ch is not None and ch.scheme == "bearer" and not self.auth.has_token(scopes):
                await self.auth.fetch_token(self._client, scopes)
            h = {**(headers or {}), **self.auth.header(scopes)}
            try:
                resp = await self._client.request(method, url, headers=h, content=body() if body else None)
            except httpx.TransportError as e:
                if _ssl_cause(e) is not None:
                    raise self._connect_error(e, url.scheme) from None
                raise Transient(f"{e.__class__.__name__}: {e}" if str(e) else e.__class__.__name__) from None
            if resp.status_code == 401 and auth_round == 0:
                await self.auth.answer(self._client, resp, scopes)
                continue
            if resp.status_code in (401, 403):
                raise self.auth.rejected(resp.status_code, registry_errors(resp)[1], repo)
            if resp.status_code in TRANSIENT_STATUS:
                code, msg = registry_errors(resp)
                raise Transient(f"{resp.status_code} {code} {msg}".strip(), _retry_after(resp))
            return resp
        raise AssertionError("unreachable")

    async def _pause(self, attempt: int, what: str, err: Transient) -> None:
        if attempt + 1 >= self.retries:
            raise PushError(f"{what} failed {self.retries} times, last: {err.reason}", where=self.target.host,
                            hint="check the registry and the network, then run the same command again "
                                 "(what completed is not sent again)")
        delay = err.retry_after if err.retry_after is not None else self.backoff * (2**attempt)
        delay *= 1 + random.random() * 0.2
        self.on_event(Retry(what, attempt + 1, delay, err.reason))
        await asyncio.sleep(delay)

    async def request(self, method: str, url: httpx.URL, scopes: tuple[str, ...], repo: str | None, what: str,
                      **kw) -> httpx.Response:
        """`_send` with retries and backoff on broken connections, 429 and 5xx."""
        attempt = 0
        while True:
            try:
                return await self._send(method, url, scopes, repo, **kw)
            except Transient as e:
                await self._pause(attempt, what, e)
                attempt += 1

    def fail(self, resp: httpx.Response, what: str, repo: str, hint: str | None = None) -> PushError:
        code, msg = registry_errors(resp)
        text = f"{what}: the registry answered {resp.status_code}"
        if code or msg:
            text += f" {code}{': ' if code and msg else ''}{msg}"
        return PushError(text, where=f"{self.target.host}/{repo}", hint=hint)

    # -- blobs ------------------------------------------------------------------------------------------
    async def blob_exists(self, repo: str, digest: str) -> bool:
        resp = await self.request("HEAD", self.url(f"/v2/{repo}/blobs/{digest}"), (scope(repo),), repo,
                                  f"checking blob {short(digest)}")
        if resp.status_code == 200 or resp.is_redirect:  # registries on object storage redirect to it
            return True
        if resp.status_code == 404:
            return False
        raise self.fail(resp, f"checking blob {short(digest)}", repo)

    async def mount(self, repo: str, digest: str, source: str) -> UploadSession | None:
        """Cross-repository mount; None when mounted, else the upload session the registry opened instead."""
        url = self.url(f"/v2/{repo}/blobs/uploads/").copy_merge_params({"mount": digest, "from": source})
        resp = await self.request("POST", url, (scope(repo), scope(source, "pull")), repo,
                                  f"mounting blob {short(digest)} from {source}", headers={"Content-Length": "0"})
        if resp.status_code == 201:
            return None
        if resp.status_code == 202:
            return self._session(resp, repo)
        raise self.fail(resp, f"mounting blob {short(digest)} from {source}", repo)

    def _session(self, resp: httpx.Response, repo: str) -> UploadSession:
        loc = resp.headers.get("location")
        if not loc:
            raise PushError("the registry opened an upload without a Location header",
                            where=f"{self.target.host}/{repo}",
                            hint="this registry does not follow the distribution spec")
        try:
            min_chunk = int(resp.headers.get("oci-chunk-min-length", "0"))
        except ValueError:
            min_chunk = 0
        return UploadSession(resp.url.join(loc), min_chunk)

    async def start_upload(self, repo: str) -> UploadSession:
        resp = await self.request("POST", self.url(f"/v2/{repo}/blobs/uploads/"), (scope(repo),), repo,
                                  "starting an upload", headers={"Content-Length": "0"})
        if resp.status_code != 202:
            raise self.fail(resp, "starting an upload", repo)
        return self._session(resp, repo)

    async def upload_blob(self, repo: str, digest: str, loc: Location, progress: Callable[[int], None],
                          session: UploadSession | None = None) -> int:
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
                    await self._pause(attempt, f"uploading blob {short(digest)}", p.err)
                    attempt += 1
                except Transient as e:
                    session = None
                    progress(0)
                    await self._pause(attempt, f"uploading blob {short(digest)}", e)
                    attempt += 1
        finally:
            os.close(fd)

    def _body(self, fd: int, loc: Location, start: int, length: int, counter: list[int], progress, base: int):
        async def gen():
            pos, end = start, start + length
            while pos < end:
                n = min(READ_CHUNK, end - pos)
                data = await asyncio.to_thread(os.pread, fd, n, loc.offset + pos)
                if not data:
                    raise PushError(f"the archive ends inside blob {loc.member or loc.path}", where=loc.path,
                                    hint="the archive is truncated or changed on disk; run regtui verify")
                yield data
                pos += len(data)
                counter[0] += len(data)
                progress(base + (pos - start))

        return gen

    async def _upload(self, repo, digest, loc: Location, fd: int, session: UploadSession, progress) -> int:
        size = loc.size
        counter = [0]
        what = f"uploading blob {short(digest)}"
        octet = {"Content-Type": "application/octet-stream"}
        try:
            if size <= max(self.chunk_size, session.min_chunk):
                url = session.url.copy_merge_params({"digest": digest})
                body = self._body(fd, loc, 0, size, counter, progress, 0)
                resp = await self._send("PUT", url, (scope(repo),), repo,
                                        headers={**octet, "Content-Length": str(size)}, body=body)
            else:
                url = await self._chunks(repo, digest, loc, fd, session, progress, counter)
                resp = await self._send("PUT", url.copy_merge_params({"digest": digest}), (scope(repo),), repo,
                                        headers={"Content-Length": "0"})
        except Transient as e:
            raise _Partial(counter[0], e) from None
        if resp.status_code == 201:
            got = resp.headers.get("docker-content-digest")
            if got and got != digest:
                raise PushError(f"the registry stored blob {short(digest)} as {short(got)}",
                                where=f"{self.target.host}/{repo}", hint="the registry rewrote the blob")
            return counter[0]
        code, _ = registry_errors(resp)
        if code == "DIGEST_INVALID" or (resp.status_code == 400 and "digest" in resp.text.lower()):
            raise self.fail(resp, f"blob {short(digest)} from {loc.member or loc.path} does not match its digest",
                            repo, hint="the archive is damaged; run regtui verify ARCHIVE")
        if resp.status_code in (404, 416):  # the upload session vanished or moved on: start over
            raise _Partial(counter[0], Transient(f"upload session lost ({resp.status_code})"))
        raise self.fail(resp, what, repo)

    async def _chunks(self, repo, digest, loc, fd, session: UploadSession, progress, counter) -> httpx.URL:
        """PATCH the blob in chunks; after a broken chunk ask the registry where the upload stands and go on."""
        size = loc.size
        url = session.url
        step = max(self.chunk_size, session.min_chunk)
        offset = 0
        failures = 0
        while offset < size:
            n = min(step, size - offset)
            body = self._body(fd, loc, offset, n, counter, progress, offset)
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(n),
                       "Content-Range": f"{offset}-{offset + n - 1}"}
            try:
                resp = await self._send("PATCH", url, (scope(repo),), repo, headers=headers, body=body)
            except Transient as e:
                failures += 1
                if failures >= self.retries:
                    raise
                await self._pause(failures - 1, f"uploading blob {short(digest)}", e)
                url, offset = await self._status(repo, url)
                progress(offset)
                continue
            if resp.status_code != 202:
                if resp.status_code in (404, 416):
                    raise Transient(f"upload session lost ({resp.status_code})")
                raise self.fail(resp, f"uploading blob {short(digest)}", repo)
            url = resp.url.join(resp.headers.get("location", str(url)))
            offset = _range_end(resp, offset + n)
        return url

    async def _status(self, repo: str, url: httpx.URL) -> tuple[httpx.URL, int]:
        """Where an interrupted chunked upload stands (GET on the upload URL: 204 + Range)."""
        resp = await self._send("GET", url, (scope(repo),), repo)
        if resp.status_code != 204:
            raise Transient(f"upload session lost ({resp.status_code})")
        return resp.url.join(resp.headers.get("location", str(url))), _range_end(resp, 0)

    # -- manifests --------------------------------------------------------------------------------------
    async def manifest_digest(self, repo: str, ref: str, media_type: str) -> str | None:
        """Digest the registry has under `ref` (tag or digest) for this media type, None when absent."""
        resp = await self.request("HEAD", self.url(f"/v2/{repo}/manifests/{ref}"), (scope(repo),), repo,
                                  f"checking manifest {ref}", headers={"Accept": media_type})
        if resp.status_code == 200:
            return resp.headers.get("docker-content-digest") or (ref if ref.startswith("sha256:") else "")
        if resp.status_code == 404:
            return None
        raise self.fail(resp, f"checking manifest {ref}", repo)

    async def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> str:
        what = f"pushing manifest {repo}:{ref}" if not ref.startswith("sha256:") else f"pushing manifest {short(ref)}"
        resp = await self.request("PUT", self.url(f"/v2/{repo}/manifests/{ref}"), (scope(repo),), repo, what,
                                  headers={"Content-Type": manifest.media_type}, body=lambda: manifest.data)
        if resp.status_code not in (200, 201, 202):
            code, _ = registry_errors(resp)
            if code in ("MANIFEST_INVALID", "UNSUPPORTED") or resp.status_code == 415:
                raise self.fail(resp, f"{what}: the registry refused this {manifest.media_type}", repo,
                                hint="it does not accept that media type or this manifest's content; push to a "
                                     "registry that supports it, or convert the archive (e.g. skopeo copy "
                                     "--format)")
            if code == "MANIFEST_BLOB_UNKNOWN" or code == "BLOB_UNKNOWN":
                raise self.fail(resp, what, repo, hint="a blob the manifest references is missing in the registry")
            raise self.fail(resp, what, repo)
        got = resp.headers.get("docker-content-digest")
        if got and got != manifest.digest:
            raise PushError(f"the registry stored manifest {short(manifest.digest)} as {short(got)}",
                            where=f"{self.target.host}/{repo}",
                            hint="the registry rewrote the manifest; digests would not be preserved")
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
