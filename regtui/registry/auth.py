"""`--htpasswd FILE`: HTTP Basic auth against bcrypt entries, as distribution's htpasswd backend reads them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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
            raise HtpasswdError(
                f"{path}:{n}: user {user!r} has no bcrypt hash; only bcrypt entries are "
                "supported (create them with `htpasswd -B`)"
            )
        users[user] = hashed.encode()
    if not users:
        raise HtpasswdError(f"{path}: no users in the htpasswd file")
    return users


FREE_FAILURES = 3  # a mistyped password or two costs nothing
MAX_DELAY = 2.0  # seconds: the most a client's failures slow its next check
MAX_QUEUED = 16  # password checks waiting for the pool beyond this answer 429 at once
FORGET_AFTER = 60.0  # a client with no failure for this long starts afresh


class TooManyChecks(Exception):
    """The password pool is full (an attack, most likely): answer 429 rather than queue without bound."""


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class BasicAuth:
    """Checks `Authorization: Basic` against bcrypt hashes without letting password guessing hurt pulls.

    bcrypt costs ~0.1 s of CPU per check by design. Checks run in a pool of their own with one thread at the
    lowest CPU priority (on the default executor, which reads blobs, 40 guessing clients made a 6.6 MiB pull
    take 16 s), at most MAX_QUEUED wait for it (more get 429 after MAX_DELAY), and after FREE_FAILURES a
    client's next checks wait, one at a time, up to MAX_DELAY seconds.
    Credentials that passed are remembered (by a hash of them), so real clients seldom reach the pool. An
    unknown user is checked against a dummy hash of the same cost: the answer takes as long as a wrong password.
    """

    def __init__(self, users: dict[str, bytes]):
        self.users = users
        self._good: set[bytes] = set()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="regtui-bcrypt", initializer=_lowest_priority)
        self._queued = 0
        self._failures: dict[str, _Failures] = {}
        self._inflight: dict[bytes, asyncio.Future] = {}
        costs = sorted(h[4:6] for h in users.values())
        self._dummy = bcrypt.hashpw(b"regtui-dummy", b"$2b$" + costs[len(costs) // 2] + b"$" + b"." * 22)

    async def check(self, header: str | None, client: str = "") -> str | None:
        """The user name for a valid `Authorization: Basic` header, else None; raises TooManyChecks."""
        if not header or header[:6].lower() != "basic ":
            return None
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = raw.partition(":")
        if not sep:
            return None
        hashed = self.users.get(user)
        key = hashlib.sha256((hashed or b"") + b"\0" + raw.encode()).digest()
        if hashed is not None and key in self._good:
            return user
        ok = await self._slow_check(client, key, password.encode(), hashed or self._dummy)
        if ok and hashed is not None:
            if len(self._good) > 1024:
                self._good.clear()
            self._good.add(key)
            return user
        return None

    async def _slow_check(self, client: str, key: bytes, password: bytes, hashed: bytes) -> bool:
        pending = self._inflight.get(key)  # the same credentials on parallel connections: one check
        if pending is not None:
            return await asyncio.shield(pending)
        record = self._failures.get(client)
        if record is not None and time.monotonic() - record.last > FORGET_AFTER:
            del self._failures[client]
            record = None
        if record is None or record.count < FREE_FAILURES:
            return await self._run(key, password, hashed, client)
        async with record.lock:  # a guessing client: one check at a time, each later than the one before
            await asyncio.sleep(min(MAX_DELAY, 0.1 * 2 ** (record.count - FREE_FAILURES)))
            return await self._run(key, password, hashed, client)

    async def _run(self, key: bytes, password: bytes, hashed: bytes, client: str) -> bool:
        if self._queued >= MAX_QUEUED:
            await asyncio.sleep(MAX_DELAY)  # answered at once, a flood would only come back faster
            raise TooManyChecks()
        self._queued += 1
        future = asyncio.get_running_loop().run_in_executor(self._pool, _checkpw, password, hashed)
        self._inflight[key] = future
        try:
            ok = await asyncio.shield(future)
        finally:
            self._queued -= 1
            self._inflight.pop(key, None)
        if ok and hashed is not self._dummy:
            self._failures.pop(client, None)
        else:
            self._failed(client)
        return ok

    def _failed(self, client: str) -> None:
        record = self._failures.get(client)
        if record is None:
            if len(self._failures) >= 4096:  # bounded: forget the client that failed longest ago
                del self._failures[min(self._failures, key=lambda c: self._failures[c].last)]
            record = self._failures[client] = _Failures()
        record.count += 1
        record.last = time.monotonic()


def _lowest_priority() -> None:
    """The password thread runs at nice 19 (Linux: per thread): blob reads and the event loop come first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False
