"""The registry client: one host, one `httpx.AsyncClient`; scheme found by pinging `/v2/`, TLS trouble
diagnosed in one line, requests retried with backoff (and the registry's Retry-After) on broken connections,
408, 429 and 5xx, final 401/403 turned into the right error.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx

from regtui.oci.refs import is_loopback_host
from regtui.remote.auth import SCOPES, Lookup, RegistryAuth
from regtui.remote.credentials import Credentials, docker_credentials
from regtui.remote.errors import (
    TRANSIENT_STATUS,
    RemoteError,
    Transient,
    Unreachable,
    registry_errors,
    retry_after,
)

# what, attempt (1-based), delay in seconds, reason: called before each pause
OnRetry = Callable[[str, int, float, str], None]
Body = Callable[[], Any]  # makes a request body afresh (bytes, or an async iterator of bytes)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _errno_cause(exc: BaseException) -> OSError | None:
    """The most specific OSError behind an httpx error (anyio wraps the refusal in a generic OSError)."""
    found = None
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, ssl.SSLError):
            if isinstance(seen, (ConnectionError, socket.gaierror)):
                return seen
            found = found or seen
        seen = seen.__cause__ or seen.__context__
    return found


class RegistryClient:
    """One registry; safe to share among concurrent tasks. Use as `async with RegistryClient(host) as c:`.

    `host` is `host[:port]` (see `regtui.oci.refs.registry_host`). Without an explicit `scheme`, loopback
    registries are spoken to over plain HTTP (as docker does), others over HTTPS, falling back to plain HTTP
    only with `insecure` (which also skips certificate checks); `ca` is a PEM file to trust. `actions` are the
    token scopes asked for (`pull`, or `pull,push`).
    """

    def __init__(
        self,
        host: str,
        *,
        scheme: str | None = None,
        ca: str | None = None,
        insecure: bool = False,
        credentials: Credentials | None = None,
        lookup: Lookup = docker_credentials,
        actions: str = "pull",
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 60.0,
        on_retry: OnRetry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "regtui",
    ):
        self.host = host
        self.scheme = scheme
        self.ca = ca
        self.insecure = insecure
        self.auth = RegistryAuth(host, credentials, lookup, actions)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.on_retry = on_retry
        self.transport = transport  # for fault injection in tests; None = httpx's own
        self.user_agent = user_agent
        self.base: httpx.URL | None = None
        self._client: httpx.AsyncClient | None = None

    # -- connection -----------------------------------------------------------------------------------
    def _schemes(self) -> list[str]:
        if self.scheme:
            return [self.scheme]
        if self.ca:
            return ["https"]
        if is_loopback_host(self.host):
            return ["http"]  # like docker: loopback registries are insecure by default
        return ["https", "http"] if self.insecure else ["https"]

    def _verify(self) -> ssl.SSLContext | bool:
        if self.ca:
            try:
                return ssl.create_default_context(cafile=self.ca)
            except (OSError, ssl.SSLError) as e:
                raise RemoteError(
                    f"cannot load CA certificates from {self.ca}: {e}",
                    hint="--ca takes a PEM file with the registry's CA certificate",
                ) from None
        return not self.insecure

    async def __aenter__(self) -> Self:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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
            headers={"User-Agent": self.user_agent},
            follow_redirects=False,
            transport=self.transport,
            auth=self.auth,
        )
        last: RemoteError | None = None
        for s in schemes:
            base = httpx.URL(f"{s}://{self.host}")
            try:
                resp = await self._ping(base)
            except httpx.HTTPError as e:
                last = self._connect_error(e, s)
                if s == "https" and "http" in schemes and _ssl_cause(e) is not None:
                    continue  # --insecure: fall back to plain HTTP like docker
                raise last from None
            self.base = base
            self._check_ping(resp)
            return
        assert last is not None
        raise last

    async def _ping(self, base: httpx.URL) -> httpx.Response:
        """GET /v2/, retried on 429/5xx and on connections that break after connecting (not on refusals)."""
        assert self._client is not None
        attempt = 0
        while True:
            try:
                resp = await self._client.get(base.join("/v2/"))
                if resp.status_code not in TRANSIENT_STATUS:
                    return resp
                err = Transient(f"GET /v2/ answered {resp.status_code}", retry_after(resp))
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as e:
                if _ssl_cause(e) is not None or attempt + 1 >= self.retries:
                    raise
                err = Transient(f"{e.__class__.__name__}: {e}")
            if attempt + 1 >= self.retries:
                return resp
            await self.pause(attempt, f"contacting {self.host}", err)
            attempt += 1

    def _check_ping(self, resp: httpx.Response) -> None:
        host = self.host
        if resp.status_code == 400 and b"HTTPS server" in resp.content:
            raise RemoteError(
                f"{host} speaks HTTPS, not plain HTTP",
                where=host,
                hint=f"write https://{host} (with --ca FILE if its certificate is private)",
            )
        if resp.status_code in (401, 403):
            if self.auth.challenge is None or self.auth.credentials() is None:
                return  # anonymous for now; a later 401 says what is missing
            raise self.auth.rejected(resp.status_code, registry_errors(resp)[1], None)
        if resp.status_code == 404:
            raise RemoteError(
                f"{host} does not serve the registry API (GET /v2/ answered 404)",
                where=host,
                hint="check the registry address and port",
            )
        if resp.status_code >= 300 or resp.status_code < 200:
            code, msg = registry_errors(resp)
            raise RemoteError(
                f"{host} answered GET /v2/ with {resp.status_code} {code} {msg}".rstrip(),
                where=host,
                hint="check the registry address; is it a registry?",
            )

    def _connect_error(self, e: httpx.HTTPError, scheme: str) -> Unreachable:
        host = self.host
        sslerr = _ssl_cause(e)
        if isinstance(sslerr, ssl.SSLCertVerificationError):
            return Unreachable(
                f"TLS certificate verification failed: {sslerr.verify_message or sslerr.reason}",
                where=host,
                hint="pass --ca FILE with the registry's CA certificate, or --insecure",
            )
        if sslerr is not None:
            reason = getattr(sslerr, "reason", None) or str(sslerr)
            hint = "the registry may speak plain HTTP: write http://HOST or use --insecure"
            return Unreachable(f"TLS handshake failed: {reason}", where=host, hint=hint)
        oserr = _errno_cause(e)
        if isinstance(oserr, ConnectionRefusedError):
            return Unreachable("connection refused", where=host, hint="is the registry running, on this port?")
        if isinstance(oserr, socket.gaierror):
            return Unreachable("unknown host (name does not resolve)", where=host, hint="check the registry address")
        if isinstance(e, httpx.TimeoutException):
            return Unreachable("no answer (timed out)", where=host, hint="check the address and the network")
        return Unreachable(
            f"cannot connect over {scheme}: {e.__class__.__name__}: {e or oserr}",
            where=host,
            hint="check the registry address",
        )

    # -- requests ---------------------------------------------------------------------------------------
    def url(self, path: str) -> httpx.URL:
        assert self.base is not None, "connect() first"
        return self.base.join(path)

    async def send(
        self,
        method: str,
        url: httpx.URL | str,
        repo: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        body: Body | None = None,
        scopes: tuple[str, ...] | None = None,
        limit: int | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """One request (a path is joined to the registry's base); a streamed body is sent again once after a
        401 taught the authentication. Raises Transient for retryable failures, RemoteError for auth and for
        a body over `limit` bytes. Blob reads may be redirected to storage (`follow_redirects`)."""
        assert self._client is not None, "connect() first"
        target = self.url(url) if isinstance(url, str) else url
        ext = {SCOPES: scopes} if scopes is not None else {}
        for auth_round in range(2):
            req = self._client.build_request(
                method, target, headers=headers, content=body() if body else None, extensions=ext
            )
            try:
                resp = await self._client.send(req, stream=limit is not None, follow_redirects=follow_redirects)
                if limit is not None:
                    resp = await self._read_limited(resp, limit)
            except httpx.TransportError as e:
                if _ssl_cause(e) is not None:
                    raise self._connect_error(e, target.scheme) from None
                raise Transient(f"{e.__class__.__name__}: {e}" if str(e) else e.__class__.__name__) from None
            if resp.status_code == 401 and auth_round == 0 and not isinstance(req.stream, httpx.ByteStream):
                continue  # the flow learnt the challenge but could not resend a streamed body
            if resp.status_code in (401, 403):
                raise self.auth.rejected(resp.status_code, registry_errors(resp)[1], repo)
            if resp.status_code in TRANSIENT_STATUS:
                code, msg = registry_errors(resp)
                raise Transient(f"{resp.status_code} {code} {msg}".strip(), retry_after(resp))
            return resp
        raise AssertionError("unreachable")

    async def _read_limited(self, resp: httpx.Response, limit: int) -> httpx.Response:
        """The streamed response, read whole unless it exceeds `limit` (a registry may be hostile)."""
        body = bytearray()
        try:
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise RemoteError(f"{resp.request.url}: response larger than {limit} bytes")
        finally:
            await resp.aclose()
        # aiter_bytes() decoded any Content-Encoding: the new response must not decode again
        headers = [
            (k, v)
            for k, v in resp.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(resp.status_code, headers=headers, content=bytes(body), request=resp.request)

    async def pause(self, attempt: int, what: str, err: Transient) -> None:
        """Wait before attempt `attempt + 1` (Retry-After, else exponential backoff with jitter), or give up."""
        if attempt + 1 >= self.retries:
            raise RemoteError(
                f"{what} failed {self.retries} times, last: {err.reason}",
                where=self.host,
                hint="check the registry and the network, then run the same command again "
                "(what completed is not sent again)",
            )
        delay = err.retry_after if err.retry_after is not None else self.backoff * (2**attempt)
        delay *= 1 + random.random() * 0.2
        if self.on_retry is not None:
            self.on_retry(what, attempt + 1, delay, err.reason)
        await asyncio.sleep(delay)

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        repo: str | None,
        what: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body | None = None,
        scopes: tuple[str, ...] | None = None,
        limit: int | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """`send` with retries and backoff on broken connections, 408, 429 and 5xx; `what` names it in
        messages ("checking blob sha256:…")."""
        attempt = 0
        while True:
            try:
                return await self.send(
                    method,
                    url,
                    repo,
                    headers=headers,
                    body=body,
                    scopes=scopes,
                    limit=limit,
                    follow_redirects=follow_redirects,
                )
            except Transient as e:
                await self.pause(attempt, what, e)
                attempt += 1

    def fail(self, resp: httpx.Response, what: str, repo: str, hint: str | None = None) -> RemoteError:
        """The error for an unexpected answer: what we did, the status and the registry's error code."""
        code, msg = registry_errors(resp)
        text = f"{what}: the registry answered {resp.status_code}"
        if code or msg:
            text += f" {code}{': ' if code and msg else ''}{msg}"
        return RemoteError(text, where=f"{self.host}/{repo}", hint=hint)
