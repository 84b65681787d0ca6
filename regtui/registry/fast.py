"""A lean raw-ASGI path for the hot read requests: GET/HEAD of /v2/, manifests and blobs.

Profiled under wrk (32 connections, manifest by tag), Quart's request and app contexts, Werkzeug routing and
Response objects took about half of the server's CPU per request. This answers the successful cases straight
from the same lookup functions (`manifest_for`, `blob_plan`), with the same headers in the same order and
inside the same `RequestEvents` middleware, so clients, the TUI and `serve` see identical bytes and events.
Anything else — errors, auth, request bodies, other routes — returns False and goes through the Quart app,
which then answers exactly as before.
"""

from __future__ import annotations

import asyncio
import os

from regtui.registry.blobs import BlobBody, StaleArchive, check_fresh
from regtui.registry.errors import RegistryError
from regtui.registry.handlers import (
    API_VERSION,
    BLOB_CACHE,
    JSON,
    RegistryState,
    blob_plan,
    changed,
    manifest_answer,
    manifest_headers,
    not_modified_headers,
    open_blob,
    repo_of,
    short_read,
)
from regtui.registry.observe import RequestInfo
from regtui.registry.pump import h11_connection, pump_body

_API = (API_VERSION[0].lower().encode(), API_VERSION[1].encode())
_JSON = JSON.encode()
_OCTETS = b"application/octet-stream"


class ScopeHeaders:
    """Request headers from the ASGI scope with the `.get`/`.getlist` Werkzeug's `Headers` offers (first value;
    names case-insensitive; latin-1, as Quart decodes them)."""

    __slots__ = ("_d",)

    def __init__(self, raw):
        d: dict[str, list[str]] = {}
        for k, v in raw:
            d.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        self._d = d

    def get(self, name: str, default=None):
        values = self._d.get(name.lower())
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self._d.get(name.lower(), ()))


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI wants them; the values come from the core, the same as the Quart path writes."""
    return [(k.lower().encode(), v.encode()) for k, v in headers.items()]


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class FastPath:
    def __init__(self, state: RegistryState):
        self.state = state

    async def __call__(self, scope, receive, send, raw_send, info: RequestInfo, count) -> bool:
        method = scope["method"]
        kind = info.route.kind
        if (
            (method != "GET" and method != "HEAD")
            or self.state.auth is not None
            or kind not in ("base", "manifest", "blob")
        ):
            return False
        headers = ScopeHeaders(scope["headers"])
        if headers.get("content-length") is not None or headers.get("transfer-encoding") is not None:
            return False  # a request body: Quart reads it
        try:
            if kind == "base":
                return await self._reply(
                    send, method, 200, [(b"content-type", _JSON), (b"content-length", b"2")], b"{}"
                )
            repo = repo_of(self.state.catalog, info.route.name or "")
            if kind == "manifest":
                return await self._manifest(send, method, repo, info, headers)
            return await self._blob(receive, send, raw_send, method, repo, info, headers, count)
        except RegistryError:
            return False

    async def _reply(self, send, method: str, status: int, headers: list, body: bytes | None) -> bool:
        headers.append(_API)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {
                "type": "http.response.body",
                "body": b"" if method == "HEAD" or body is None else body,
                "more_body": False,
            }
        )
        return True

    async def _manifest(self, send, method: str, repo, info: RequestInfo, headers: ScopeHeaders) -> bool:
        manifest, etag, not_modified = manifest_answer(repo, info.route, headers, info)
        if not_modified:
            return await self._reply(send, method, 304, _raw(not_modified_headers(etag, manifest.digest)), None)
        return await self._reply(
            send,
            method,
            200,
            [
                (b"content-type", manifest.media_type.encode()),
                (b"content-length", str(len(manifest.data)).encode()),
                *_raw(manifest_headers(manifest, etag)),
            ],
            manifest.data,
        )

    async def _blob(
        self, receive, send, raw_send, method: str, repo, info: RequestInfo, headers: ScopeHeaders, count
    ) -> bool:
        plan = blob_plan(repo, info.route, headers, self.state.refuse)
        if plan.not_modified:
            headers304 = _raw(not_modified_headers(plan.etag, plan.digest, BLOB_CACHE))
            return await self._reply(send, method, 304, headers304, None)
        loc = plan.blob.location
        if loc is None:
            return False  # an in-memory blob: the app sends it
        conn = None if method == "HEAD" else h11_connection(raw_send)
        if method == "GET" and conn is None:
            return False  # TLS or another server: the app streams it
        expected = plan.blob.archive.fingerprints.get(loc.path)
        try:
            if method == "HEAD":
                await asyncio.to_thread(check_fresh, loc.path, expected)
                fd = None
            else:
                fd = await open_blob(loc.path, expected)
        except StaleArchive:
            return False  # the app refuses it, with its log event
        fds = [fd]
        try:
            out = _raw(plan.headers)
            out += [(b"content-type", _OCTETS), (b"content-length", str(plan.length).encode()), _API]
            if fd is not None:
                info.blob = plan.digest
            await send({"type": "http.response.start", "status": plan.status, "headers": out})
            # No connection the pump knows (or not the Hypercorn it knows): stream instead.
            if fd is not None and (conn is None or not conn.headers_sent()):
                fds[0] = None
                body = BlobBody(
                    fd,
                    loc,
                    plan.start,
                    plan.length,
                    expected=expected,
                    on_short_read=lambda left: short_read(self.state, plan.blob, left, info),
                    on_change=lambda e: changed(self.state, plan.blob, e, info),
                )
                info.body = body
                # Hypercorn drops the body messages of a client that left without raising: without this watch
                # the whole blob was read and "sent" to nobody, and logged as served in full.
                gone = asyncio.ensure_future(_disconnected(receive))
                try:
                    async for chunk in body:
                        if gone.done():
                            return True  # the client left: the middleware says so
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                finally:
                    gone.cancel()
                fd = None
            if (
                fd is not None
                and conn is not None
                and not await pump_body(
                    conn,
                    fds,
                    plan,
                    count,
                    lambda e: changed(self.state, plan.blob, e, info),
                    lambda left: short_read(self.state, plan.blob, left, info),
                )
            ):
                return True  # the client left: Hypercorn closes the connection, the middleware says so
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if fds[0] is not None:
                os.close(fds[0])
        return True
