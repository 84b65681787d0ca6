"""The read-only registry: a Quart app serving archives over the OCI distribution API (pull and discovery).

`create_app` builds it; `regtui.registry.server.serve` runs it on Hypercorn (headless or inside the TUI).
Every route goes through one dispatcher so that auth, method checks and spec error bodies apply everywhere.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Mapping

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from regtui.oci import mediatypes as mt
from regtui.oci.model import Archive
from regtui.registry.auth import REALM, BasicAuth, TooManyChecks, load_htpasswd
from regtui.registry.blobs import BlobBody, MemoryBody, StaleArchive, check_fresh
from regtui.registry.catalog import Blob, Catalog, Repo, artifact_type
from regtui.registry.errors import RegistryError
from regtui.registry.events import EventBus, ServerLog
from regtui.registry.fast import FastPath
from regtui.registry.handlers import (
    API_VERSION,
    BLOB_CACHE,
    JSON,
    READ_METHODS,
    RegistryState,
    blob_plan,
    changed,
    digest_of,
    manifest_answer,
    manifest_headers,
    not_modified_headers,
    open_blob,
    refused,
    repo_of,
    short_read,
)
from regtui.registry.observe import SCOPE_KEY, PullTracker, RequestEvents, RequestInfo
from regtui.registry.routes import Route, parse_path

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_app_ids = itertools.count(1)


class BusLogHandler(logging.Handler):
    """Log records as ServerLog events (Hypercorn and Quart would otherwise write over the TUI)."""

    def __init__(self, bus: EventBus):
        super().__init__(logging.INFO)
        self.bus = bus
        # The server's event loop: records logged from other threads are published there, not from the thread.
        self.loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message = f"{message}: {type(exc).__name__}: {exc}"
            event = ServerLog(record.levelname.lower(), message, record.created)
        except Exception:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        target = self.loop
        if target is not None and loop is not target and not target.is_closed():
            target.call_soon_threadsafe(self.bus.publish, event)
        else:
            self.bus.publish(event)


def create_app(
    archives: list[Archive],
    *,
    bus: EventBus | None = None,
    names=(),
    any_name: bool = False,
    htpasswd: str | None = None,
    fast: bool = True,
    refuse: Mapping[str, str] | None = None,
) -> Quart:
    """A Quart app serving `archives`; raises `regtui.registry.auth.HtpasswdError` for a bad htpasswd file.

    `refuse` maps blob digests known not to verify to the reason: those are answered BLOB_UNKNOWN, not sent
    (the caller may keep filling it while serving, as the TUI does when a verification finishes).

    `fast=False` sends every request through Quart (tests compare both paths byte for byte).
    """
    bus = bus or EventBus()
    auth = BasicAuth(load_htpasswd(htpasswd)) if htpasswd else None
    app = Quart(__name__)
    # A logger per app, routed to the bus: Quart's default handler would print to stderr.
    logger = logging.getLogger(f"regtui.registry.app{next(_app_ids)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [BusLogHandler(bus)]
    app.logger = logger
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    pulls = PullTracker(bus)
    state = RegistryState(
        bus, Catalog(archives, names, any_name), pulls, auth, refuse=refuse if refuse is not None else {}
    )
    app.extensions["regtui"] = state

    async def dispatch(path: str = "") -> Response:
        info = _request_info()
        if info is None:  # mounted without the middleware
            info = RequestInfo(0, parse_path(request.path))
        try:
            return await _handle(state, info.route, info)
        except RegistryError as e:
            return _error(e, info)

    app.add_url_rule("/", "root", dispatch, methods=ALL_METHODS, defaults={"path": ""})
    app.add_url_rule("/<path:path>", "any", dispatch, methods=ALL_METHODS)

    @app.errorhandler(HTTPException)
    async def http_error(e: HTTPException) -> Response:  # e.g. a method we do not route
        info = _request_info()
        try:
            await _authorize(state)
        except RegistryError as denied:
            return _error(denied, info)
        if e.code == 405:
            err = RegistryError(
                "UNSUPPORTED", f"method {request.method} is not supported", headers={"Allow": "GET, HEAD"}
            )
        elif e.code == 404:
            err = RegistryError("NOT_FOUND", e.description)
        else:  # 500 for a bug of ours (logged on the bus by Quart), or another HTTP error
            err = RegistryError("UNKNOWN", e.description, status=e.code or 500)
        return _error(err, info)

    @app.after_request
    async def api_version(response: Response) -> Response:
        response.headers[API_VERSION[0]] = API_VERSION[1]
        return response

    events = state.events = RequestEvents(app.asgi_app, bus, pulls, fast=FastPath(state) if fast else None)

    async def asgi(scope, receive, send):
        if scope["type"] == "websocket":  # Quart would answer it outside a request context: a bare 500
            return await refuse_websocket(state, scope, send)
        return await events(scope, receive, send)

    # Quart's documented way to add ASGI middleware; its stubs declare asgi_app a method, not an attribute.
    app.asgi_app = asgi  # type: ignore[method-assign]
    return app


def _request_info() -> RequestInfo | None:
    """What the `RequestEvents` middleware put in this request's scope (None when mounted without it)."""
    info = request.scope.get(SCOPE_KEY)
    return info if isinstance(info, RequestInfo) else None


async def refuse_websocket(state: RegistryState, scope, send) -> None:
    """A WebSocket upgrade: 401 without valid credentials (like every route), else 404, with a spec body."""
    raw = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"authorization"]
    try:
        await _check(state, raw[0] if raw else None, scope)
    except RegistryError as denied:
        err = denied
    else:
        err = RegistryError(
            "NOT_FOUND", f"no WebSocket endpoint at {scope.get('path', '')}; this registry answers plain HTTP requests"
        )
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})  # the server answers 403 itself
        return
    body = err.body()
    headers = [
        (b"content-type", JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (API_VERSION[0].lower().encode(), API_VERSION[1].encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "websocket.http.response.start", "status": err.status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body, "more_body": False})


def _client(scope) -> str:
    client = scope.get("client") or ("", 0)
    return str(client[0])


def _error(e: RegistryError, info: RequestInfo | None) -> Response:
    if info is not None:
        info.error_code = e.code
        info.detail = e.detail_text()
    resp = Response(e.body(), status=e.status, content_type=JSON)
    for k, v in e.headers.items():
        resp.headers[k] = v
    return resp


async def _check(state: RegistryState, header: str | None, scope) -> None:
    if state.auth is None:
        return
    try:
        user = await state.auth.check(header, _client(scope))
    except TooManyChecks:
        raise RegistryError(
            "TOOMANYREQUESTS", "too many password checks at once; retry in a second", headers={"Retry-After": "1"}
        ) from None
    if user is None:
        raise RegistryError(
            "UNAUTHORIZED",
            "valid credentials for this registry are required",
            headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
        )


async def _authorize(state: RegistryState) -> None:
    await _check(state, request.headers.get("Authorization"), request.scope)


async def _handle(state: RegistryState, route: Route, info: RequestInfo) -> Response:
    await _authorize(state)
    if route.kind == "other":
        raise RegistryError("NOT_FOUND", f"no API endpoint at {request.path}")
    if request.method not in READ_METHODS:
        raise RegistryError(
            "UNSUPPORTED",
            f"this registry is read-only; {request.method} is not supported",
            headers={"Allow": "GET, HEAD"},
        )
    if route.kind == "redirect":
        return Response(
            '<a href="/v2/">Moved Permanently</a>.\n\n',
            status=301,
            headers={"Location": "/v2/"},
            content_type="text/html; charset=utf-8",
        )
    if route.kind == "base":
        return _body(b"{}", JSON)
    if route.kind == "catalog":
        return _catalog(state.catalog)
    if route.kind == "upload":
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", "this registry is read-only; there are no uploads")
    repo = repo_of(state.catalog, route.name or "")
    if route.kind == "tags":
        return _tags(repo, route.name or "")
    if route.kind == "manifest":
        return _manifest(repo, route, info)
    if route.kind == "referrers":
        return _referrers(repo, route.reference or "")
    return await _blob(state, repo, route, info)


# -- helpers ---------------------------------------------------------------------------------------------
def _body(data: bytes, content_type: str, status: int = 200, headers: dict | None = None) -> Response:
    """GET: the bytes; HEAD: no body but the same Content-Length."""
    resp = Response(b"" if request.method == "HEAD" else data, status=status, content_type=content_type)
    resp.content_length = len(data)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _not_modified(headers: dict[str, str]) -> Response:
    resp = Response(b"", status=304)
    for k, v in headers.items():
        resp.headers[k] = v
    resp.headers.pop("Content-Length", None)
    resp.headers.pop("Content-Type", None)
    return resp


# -- manifests -------------------------------------------------------------------------------------------
def _manifest(repo: Repo, route: Route, info: RequestInfo) -> Response:
    manifest, etag, not_modified = manifest_answer(repo, route, request.headers, info)
    if not_modified:
        return _not_modified(not_modified_headers(etag, manifest.digest))
    return _body(manifest.data, manifest.media_type, headers=manifest_headers(manifest, etag))


# -- blobs -----------------------------------------------------------------------------------------------
async def _blob(state: RegistryState, repo: Repo, route: Route, info: RequestInfo) -> Response:
    plan = blob_plan(repo, route, request.headers, state.refuse)
    if plan.not_modified:
        return _not_modified(not_modified_headers(plan.etag, plan.digest, BLOB_CACHE))
    body = await _open_body(state, plan.blob, plan.start, plan.length, request.method == "HEAD", info)
    info.body = body
    resp = Response(body, status=plan.status, headers=plan.headers, content_type="application/octet-stream")
    resp.content_length = plan.length
    resp.timeout = None  # big layers take longer than Quart's 60 s default
    if request.method == "GET":
        info.blob = plan.digest
    return resp


async def _open_body(state: RegistryState, blob: Blob, start: int, length: int, head: bool, info: RequestInfo):
    if blob.location is None:
        return b"" if head else MemoryBody((blob.data or b"")[start : start + length])
    loc = blob.location
    expected = blob.archive.fingerprints.get(loc.path)
    try:
        if head:
            await asyncio.to_thread(check_fresh, loc.path, expected)
            return b""
        fd = await open_blob(loc.path, expected)
    except StaleArchive as e:
        refused(state, blob, e)
    return BlobBody(
        fd,
        loc,
        start,
        length,
        on_short_read=lambda missing: short_read(state, blob, missing, info),
        expected=expected,
        on_change=lambda e: changed(state, blob, e, info),
    )


# -- listings --------------------------------------------------------------------------------------------
def _page(items: list[str], path: str) -> tuple[list[str], dict[str, str]]:
    n_arg, last = request.args.get("n"), request.args.get("last")
    if last:
        items = [i for i in items if i > last]
    if n_arg is None or n_arg == "":
        return items, {}
    try:
        n = int(n_arg)
    except ValueError:
        n = -1
    if n < 0:
        raise RegistryError("PAGINATION_NUMBER_INVALID", f"n must be a non-negative integer, got {n_arg!r}")
    page = items[:n]
    headers = {}
    if 0 < n < len(items):
        headers["Link"] = f'<{path}?last={page[-1]}&n={n}>; rel="next"'
    return page, headers


def _listing(obj: dict, headers: dict) -> Response:
    return _body(json.dumps(obj, separators=(",", ":")).encode() + b"\n", JSON, headers=headers)


def _catalog(catalog: Catalog) -> Response:
    names, headers = _page(catalog.catalog(), "/v2/_catalog")
    return _listing({"repositories": names}, headers)


def _tags(repo: Repo, name: str) -> Response:
    tags, headers = _page(sorted(repo.tags), f"/v2/{name}/tags/list")
    return _listing({"name": name, "tags": tags}, headers)


def _referrers(repo: Repo, reference: str) -> Response:
    digest = digest_of(reference)
    wanted = request.args.get("artifactType")
    descriptors = []
    for image, m in repo.referrers(digest):
        kind = artifact_type(image)
        if wanted and kind != wanted:
            continue
        d: dict = {"mediaType": m.media_type, "digest": m.digest, "size": m.size, "artifactType": kind}
        if image.annotations:
            d["annotations"] = image.annotations
        descriptors.append(d)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
    headers = {"OCI-Filters-Applied": "artifactType"} if wanted else {}
    return _body(json.dumps(index, separators=(",", ":")).encode(), mt.OCI_INDEX, headers=headers)
