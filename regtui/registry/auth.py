"""`--htpasswd FILE`: HTTP Basic auth against bcrypt entries, as distribution's htpasswd backend reads them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib

import bcrypt

REALM = "regtui"


class HtpasswdError(Exception):
    pass


def load_htpasswd(path: str) -> dict[str, bytes]:
    """user -> bcrypt hash; raises HtpasswdError with the file and line for anything we cannot check."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise HtpasswdError(f"{path}: cannot read the htpasswd file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise HtpasswdError(f"{path}: not a text file") from None
    users: dict[str, bytes] = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise HtpasswdError(f"{path}:{n}: expected user:hash")
        if not hashed.startswith(("$2y$", "$2b$", "$2a$")):
            raise HtpasswdError(f"{path}:{n}: user {user!r} has no bcrypt hash; only bcrypt entries are "
                                "supported (create them with `htpasswd -B`)")
        users[user] = hashed.encode()
    if not users:
        raise HtpasswdError(f"{path}: no users in the htpasswd file")
    return users


class BasicAuth:
    def __init__(self, users: dict[str, bytes]):
        self.users = users
        # bcrypt costs ~0.1 s per check by design; remember credentials that passed (by a hash of them).
        self._good: set[bytes] = set()

    async def check(self, header: str | None, client: str = "") -> str | None:
        """The user name for a valid `Authorization: Basic` header, else None."""
        if not header or not header[:6].lower() == "basic ":
            return None
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = raw.partition(":")
        hashed = self.users.get(user)
        if not sep or hashed is None:
            return None
        key = hashlib.sha256(hashed + b"\0" + raw.encode()).digest()
        if key in self._good:
            return user
        ok = await asyncio.to_thread(_checkpw, password.encode(), hashed)
        if ok:
            if len(self._good) > 1024:
                self._good.clear()
            self._good.add(key)
            return user
        return None


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False
