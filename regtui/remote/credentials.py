"""Registry credentials: from flags, or from the docker `config.json` the user already has (inline `auth`,
`username`/`password`, `identitytoken`, credential helpers and `credsStore`).

`RegistryAuth` looks them up lazily, on the first 401: an open registry never trips over a credential helper
that is not installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from regtui.oci.refs import DOCKER_HUB_API, DOCKER_HUB_HOSTS
from regtui.remote.errors import RemoteError


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
    if host in DOCKER_HUB_HOSTS:
        return h in DOCKER_HUB_HOSTS
    return h == host


def _run_helper(helper: str, host: str, config: Path) -> Credentials | None:
    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        raise RemoteError(
            f"credentials for {host} are kept by the credential helper docker-credential-{helper}, "
            "which is not installed",
            where=str(config),
            hint="install the helper, or pass --username U --password-stdin",
        )
    server = "https://index.docker.io/v1/" if host == DOCKER_HUB_API else host  # the key docker login writes
    try:
        out = subprocess.run([exe, "get"], input=server.encode(), capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RemoteError(
            f"credential helper docker-credential-{helper} failed: {e}",
            where=str(config),
            hint="pass --username U --password-stdin instead",
        ) from None
    if out.returncode != 0:
        text = (out.stdout or out.stderr).decode(errors="replace").strip()
        if "credentials not found" in text.lower():
            return None
        raise RemoteError(
            f"credential helper docker-credential-{helper} failed: {text[:200]}",
            where=str(config),
            hint="pass --username U --password-stdin instead",
        )
    try:
        obj = json.loads(out.stdout)
        user, secret = str(obj.get("Username", "")), str(obj.get("Secret", ""))
    except (ValueError, AttributeError):
        raise RemoteError(
            f"credential helper docker-credential-{helper} printed something that is not JSON",
            where=str(config),
            hint="pass --username U --password-stdin instead",
        ) from None
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
        raise RemoteError(
            f"cannot read docker config: {e}",
            where=str(path),
            hint="fix the file, or pass --username U --password-stdin",
        ) from None
    if not isinstance(obj, dict):
        return None
    helpers = obj.get("credHelpers")
    helpers = helpers if isinstance(helpers, dict) else {}
    for key, helper in helpers.items():
        if _same_host(key, host) and isinstance(helper, str):
            return _run_helper(helper, host, path)
    auths = obj.get("auths")
    auths = auths if isinstance(auths, dict) else {}
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
                raise RemoteError(
                    f"the `auth` entry for {key} is not base64 of user:password",
                    where=str(path),
                    hint="run docker login again, or pass --username U --password-stdin",
                )
            return Credentials(user, password, source=str(path))
        if entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password", "")), source=str(path))
    store = obj.get("credsStore")
    if isinstance(store, str) and store:
        return _run_helper(store, host, path)
    return None
