"""Registry authentication: anonymous, basic, and the bearer-token flow, with credentials from flags or the
docker `config.json` the user already has (inline `auth`, `username`/`password`, `identitytoken`, credential
helpers).

Credentials are looked up lazily, on the first 401: pushing to an open registry never trips over a credential
helper that is not installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from regtui.push.errors import PushError

HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth2 refresh token (docker's `identitytoken`)
    source: str = ""  # where they came from, for messages

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


# -- docker config.json -------------------------------------------------------------------------------


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _key_host(key: str) -> str:
    k = re.sub(r"^[a-z]+://", "", key.strip().lower())
    return k.split("/", 1)[0]


def _same_host(key: str, host: str) -> bool:
    h = _key_host(key)
    if host in ("registry-1.docker.io", "index.docker.io", "docker.io"):
        return h in ("index.docker.io", "docker.io", "registry-1.docker.io")
    return h == host


def _run_helper(helper: str, host: str, config: Path) -> Credentials | None:
    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        raise PushError(
            f"credentials for {host} are kept by the credential helper docker-credential-{helper}, "
            "which is not installed",
            where=str(config),
            hint="install the helper, or pass --username U --password-stdin",
        )
    server = "https://index.docker.io/v1/" if host == "registry-1.docker.io" else host
    try:
        out = subprocess.run([exe, "get"], input=server.encode(), capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PushError(f"credential helper docker-credential-{helper} failed: {e}", where=str(config),
                        hint="pass --username U --password-stdin instead") from None
    if out.returncode != 0:
        text = (out.stdout or out.stderr).decode(errors="replace").strip()
        if "credentials not found" in text.lower():
            return None
        raise PushError(f"credential helper docker-credential-{helper} failed: {text[:200]}", where=str(config),
                        hint="pass --username U --password-stdin instead")
    try:
        obj = json.loads(out.stdout)
        user, secret = str(obj.get("Username", "")), str(obj.get("Secret", ""))
    except (ValueError, AttributeError):
        raise PushError(f"credential helper docker-credential-{helper} printed something that is not JSON",
                        where=str(config), hint="pass --username U --password-stdin instead") from None
    src = f"docker-credential-{helper}"
    if user == "<token>":
        return Credentials(identity_token=secret, source=src)
    return Credentials(user, secret, source=src)


def docker_credentials(host: str, config: Path | None = None) -> Credentials | None:
    """Credentials for `host` from docker's config.json, or None when it has none."""
    path = config or docker_config_path()
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise PushError(f"cannot read docker config: {e}", where=str(path),
                        hint="fix the file, or pass --username U --password-stdin") from None
    if not isinstance(obj, dict):
        return None
    helpers = obj.get("credHelpers") if isinstance(obj.get("credHelpers"), dict) else {}
    for key, helper in helpers.items():
        if _same_host(key, host) and isinstance(helper, str):
            return _run_helper(helper, host, path)
    auths = obj.get("auths") if isinstance(obj.get("auths"), dict) else {}
    for key, entry in auths.items():
        if not (_same_host(key, host) and isinstance(entry, dict)):
            continue
        if entry.get("identitytoken"):
            return Credentials(identity_token=str(entry["identitytoken"]), source=str(path))
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(str(entry["auth"]), validate=False).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                sep = ""
            if not sep:
                raise PushError(f"the `auth` entry for {key} is not base64 of user:password", where=str(path),
                                hint="run docker login again, or pass --username U --password-stdin")
            return Credentials(user, password, source=str(path))
        if entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password", "")), source=str(path))
    store = obj.get("credsStore")
    if isinstance(store, str) and store:
        return _run_helper(store, host, path)
    return None


# -- challenges and tokens ----------------------------------------------------------------------------

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
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
              for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def scope(repo: str, actions: str = "pull,push") -> str:
    return f"repository:{repo}:{actions}"


class Authenticator:
    """Answers 401s: remembers the registry's scheme and caches bearer tokens per scope set."""

    def __init__(self, host: str, credentials: Credentials | None = None, lookup=docker_credentials):
        self.host = host
        self._explicit = credentials
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

    def header(self, scopes: tuple[str, ...]) -> dict[str, str]:
        """The Authorization header to send now, if we know one."""
        ch = self.challenge
        if ch is None:
            return {}
        if ch.scheme == "basic":
            creds = self.credentials()
            return {"Authorization": creds.basic()} if creds else {}
        tok = self._tokens.get(tuple(sorted(scopes)))
        if tok and tok[1] > time.monotonic():
            return {"Authorization": f"Bearer {tok[0]}"}
        return {}

    def has_token(self, scopes: tuple[str, ...]) -> bool:
        tok = self._tokens.get(tuple(sorted(scopes)))
        return bool(tok and tok[1] > time.monotonic())

    async def answer(self, client: httpx.AsyncClient, response: httpx.Response, scopes: tuple[str, ...]) -> None:
        """Learn from a 401 and get what the next attempt needs; raises PushError when we cannot."""
        ch = parse_challenge(response.headers.get("www-authenticate", ""))
        if ch is None or ch.scheme not in ("basic", "bearer"):
            raise PushError(f"the registry {self.host} asks for authentication it does not describe "
                            f"(WWW-Authenticate: {response.headers.get('www-authenticate', '')!r})",
                            hint="check the registry address")
        self.challenge = ch
        if ch.scheme == "basic":
            if self.credentials() is None:
                raise self.login_needed()
            return
        await self.fetch_token(client, scopes, extra=ch.params.get("scope"))

    def login_needed(self) -> PushError:
        return PushError(f"the registry {self.host} requires a login", where=self.host,
                         hint="pass --username U --password-stdin, or run docker login for it")

    def rejected(self, status: int, detail: str, repo: str | None) -> PushError:
        creds = self._creds
        if status == 401 and creds is None:
            return self.login_needed()
        who = f"as {creds.username!r}" if creds and creds.username else "anonymously"
        where = f"{self.host}/{repo}" if repo else self.host
        if status == 403:
            return PushError(f"access denied {who} (403{': ' + detail if detail else ''})", where=where,
                             hint="this account may not push there; check the repository name and permissions")
        src = f" from {creds.source}" if creds and creds.source else ""
        return PushError(f"authentication failed {who}{src} (401{': ' + detail if detail else ''})", where=where,
                         hint="check the user name and password (--username U --password-stdin) or docker login")

    async def fetch_token(self, client: httpx.AsyncClient, scopes: tuple[str, ...], extra: str | None = None) -> None:
        ch = self.challenge
        assert ch is not None and ch.scheme == "bearer"
        realm = ch.params.get("realm")
        if not realm:
            raise PushError(f"the registry {self.host} asks for a bearer token but names no realm",
                            hint="the registry's token configuration is broken")
        wanted = list(scopes)
        if extra:
            wanted += [s for s in extra.split(" ") if s and s not in wanted]
        service = ch.params.get("service")
        creds = self.credentials()
        try:
            if creds and creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "regtui",
                        "scope": " ".join(wanted)}
                if service:
                    form["service"] = service
                r = await client.post(realm, data=form)
            else:
                params = [("scope", s) for s in wanted] + ([("service", service)] if service else [])
                params.append(("client_id", "regtui"))
                headers = {"Authorization": creds.basic()} if creds and creds.username else {}
                r = await client.get(realm, params=params, headers=headers)
        except httpx.HTTPError as e:
            raise PushError(f"cannot reach the token service {realm}: {e.__class__.__name__}: {e}",
                            where=self.host, hint="check that the registry's auth realm is reachable") from None
        if r.status_code in (401, 403):
            if creds is None:
                raise self.login_needed()
            raise self.rejected(r.status_code, f"token service {realm} refused the credentials", None)
        if r.status_code != 200:
            raise PushError(f"the token service {realm} answered {r.status_code}", where=self.host,
                            hint="try again later, or check the registry's auth configuration")
        try:
            body = r.json()
            token = body.get("token") or body.get("access_token")
            ttl = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token, ttl = None, 0
        if not token:
            raise PushError(f"the token service {realm} returned no token", where=self.host,
                            hint="check the registry's auth configuration")
        # Renew a little before expiry; tokens of a minute are common.
        self._tokens[tuple(sorted(scopes))] = (str(token), time.monotonic() + max(5.0, ttl - 10))
