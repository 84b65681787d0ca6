"""Registry authentication as an `httpx.Auth` flow: anonymous, HTTP Basic, and the bearer-token flow (token
service with basic credentials, anonymously, or with docker's `identitytoken` as an OAuth2 refresh token).

The flow learns the registry's scheme from the first 401 and then authorizes each request up front: bearer
tokens are cached per set of scopes, which it derives from the request path (`/v2/<repo>/...`: the client's
`actions` on that repository, plus pull on a mount's `from=` repository). A request whose body cannot be sent
twice (a streamed upload) is not resent after a 401: `RegistryClient` sends it again with a fresh body.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import httpx

from regtui.remote.credentials import Credentials, docker_credentials
from regtui.remote.errors import RemoteError

TOKEN_REQUEST = "regtui.token"  # request extension marking a token service request (its body is read)
SCOPES = "regtui.scopes"  # request extension: explicit scopes, instead of those derived from the path
_REPO_PATH = re.compile(r"^/v2/(.+?)/(?:blobs|manifests|tags|referrers)/")

Lookup = Callable[[str], "Credentials | None"]


_PARAM = re.compile(r'([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
        for m in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def scope(repo: str, actions: str = "pull,push") -> str:
    return f"repository:{repo}:{actions}"


def scopes_for(request: httpx.Request, actions: str) -> tuple[str, ...]:
    """The token scopes a request needs: `actions` on its repository, pull on a mount's source."""
    explicit = request.extensions.get(SCOPES)
    if explicit is not None:
        return tuple(explicit)
    m = _REPO_PATH.match(request.url.path)
    if not m:
        return ()
    out = [scope(m.group(1), actions)]
    source = request.url.params.get("from")
    if source:
        out.append(scope(source, "pull"))
    return tuple(out)


class RegistryAuth(httpx.Auth):
    """Authorizes requests to one registry; shared by concurrent requests of one client."""

    def __init__(
        self,
        host: str,
        credentials: Credentials | None = None,
        lookup: Lookup = docker_credentials,
        actions: str = "pull",
    ):
        self.host = host
        self.actions = actions
        self._lookup = lookup
        self._creds: Credentials | None = credentials
        self._looked_up = credentials is not None
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}

    def credentials(self) -> Credentials | None:
        if not self._looked_up:
            self._looked_up = True
            self._creds = self._lookup(self.host)
        return self._creds

    # -- httpx.Auth ------------------------------------------------------------------------------------
    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._flow(request)
        req = next(flow)
        while True:
            resp = yield req
            if req.extensions.get(TOKEN_REQUEST):
                resp.read()
            try:
                req = flow.send(resp)
            except StopIteration:
                return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._flow(request)
        req = next(flow)
        while True:
            resp = yield req
            if req.extensions.get(TOKEN_REQUEST):
                await resp.aread()
            try:
                req = flow.send(resp)
            except StopIteration:
                return

    def _flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scopes = scopes_for(request, self.actions)
        ping = request.url.path == "/v2/"
        ch = self.challenge
        if ch is not None and ch.scheme == "bearer" and not self.has_token(scopes) and not ping:
            yield from self._fetch_token(scopes)
        self._authorize(request, scopes)
        response = yield request
        if response.status_code != 401:
            return
        ch = parse_challenge(response.headers.get("www-authenticate", ""))
        if ch is None or ch.scheme not in ("basic", "bearer"):
            if ping:
                return
            raise RemoteError(
                f"the registry {self.host} asks for authentication it does not describe "
                f"(WWW-Authenticate: {response.headers.get('www-authenticate', '')!r})",
                hint="check the registry address",
            )
        self.challenge = ch
        if self.credentials() is None and (ch.scheme == "basic" or ping):
            return  # the caller says a login is needed (or, for the ping, that it goes on anonymously)
        if ch.scheme == "bearer":
            yield from self._fetch_token(scopes, extra=ch.params.get("scope"))
        if not isinstance(request.stream, httpx.ByteStream):
            return  # a streamed body cannot be sent twice; the caller sends it again
        self._authorize(request, scopes)
        yield request

    def _authorize(self, request: httpx.Request, scopes: tuple[str, ...]) -> None:
        ch = self.challenge
        if ch is None:
            return
        if ch.scheme == "basic":
            creds = self.credentials()
            if creds:
                request.headers["Authorization"] = creds.basic()
            return
        tok = self._tokens.get(tuple(sorted(scopes)))
        if tok and tok[1] > time.monotonic():
            request.headers["Authorization"] = f"Bearer {tok[0]}"

    def has_token(self, scopes: tuple[str, ...]) -> bool:
        tok = self._tokens.get(tuple(sorted(scopes)))
        return bool(tok and tok[1] > time.monotonic())

    # -- the token service -----------------------------------------------------------------------------
    def _fetch_token(
        self, scopes: tuple[str, ...], extra: str | None = None
    ) -> Generator[httpx.Request, httpx.Response, None]:
        ch = self.challenge
        assert ch is not None and ch.scheme == "bearer"
        realm = ch.params.get("realm")
        if not realm:
            raise RemoteError(
                f"the registry {self.host} asks for a bearer token but names no realm",
                hint="the registry's token configuration is broken",
            )
        wanted = list(scopes)
        if extra:
            wanted += [s for s in extra.split(" ") if s and s not in wanted]
        service = ch.params.get("service")
        creds = self.credentials()
        ext = {TOKEN_REQUEST: True}
        if creds and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "regtui",
                "scope": " ".join(wanted),
            }
            if service:
                form["service"] = service
            req = httpx.Request("POST", realm, data=form, extensions=ext)
        else:
            pairs: list[tuple[str, str | int | float | bool | None]] = [("scope", s) for s in wanted]
            if service:
                pairs.append(("service", service))
            pairs.append(("client_id", "regtui"))
            params = httpx.QueryParams(pairs)
            headers = {"Authorization": creds.basic()} if creds and creds.username else {}
            req = httpx.Request("GET", realm, params=params, headers=headers, extensions=ext)
        r = yield req
        if r.status_code in (401, 403):
            if creds is None:
                raise self.login_needed()
            raise self.rejected(r.status_code, f"token service {realm} refused the credentials", None)
        if r.status_code != 200:
            raise RemoteError(
                f"the token service {realm} answered {r.status_code}",
                where=self.host,
                hint="try again later, or check the registry's auth configuration",
            )
        try:
            body = r.json()
            token = body.get("token") or body.get("access_token")
            ttl = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token, ttl = None, 0
        if not token:
            raise RemoteError(
                f"the token service {realm} returned no token",
                where=self.host,
                hint="check the registry's auth configuration",
            )
        # Renew a little before expiry; tokens of a minute are common.
        self._tokens[tuple(sorted(scopes))] = (str(token), time.monotonic() + max(5.0, ttl - 10))

    # -- errors ----------------------------------------------------------------------------------------
    def login_needed(self) -> RemoteError:
        return RemoteError(
            f"the registry {self.host} requires a login",
            where=self.host,
            hint="pass --username U --password-stdin, or run docker login for it",
        )

    def rejected(self, status: int, detail: str, repo: str | None) -> RemoteError:
        """The error for a final 401/403: a login is needed, the credentials are wrong, or access is denied."""
        creds = self._creds
        if status == 401 and creds is None:
            return self.login_needed()
        who = f"as {creds.username!r}" if creds and creds.username else "anonymously"
        where = f"{self.host}/{repo}" if repo else self.host
        if status == 403:
            return RemoteError(
                f"access denied {who} (403{': ' + detail if detail else ''})",
                where=where,
                hint="this account may not push there; check the repository name and permissions",
            )
        src = f" from {creds.source}" if creds and creds.source else ""
        return RemoteError(
            f"authentication failed {who}{src} (401{': ' + detail if detail else ''})",
            where=where,
            hint="check the user name and password (--username U --password-stdin) or docker login",
        )
