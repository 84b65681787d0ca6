"""Event sources for the TUI: where the Requests and Pulls views get their events.

- The embedded server (the TUI opened on archives): the app's own bus, fed by the server it runs; no source.
- `SseSource`: `regtui serve --events` elsewhere, `GET <url>/_regtui/events` streamed with httpx, with TLS, auth
  and error wording from `regtui.remote` (as push and diff); reconnects with backoff (saying so and why), resumes
  with `Last-Event-ID`, and starts its ids over when the server restarted.
- `LinesSource`: `--log-format json` lines from stdin (`kubectl logs -f deploy/seed | regtui watch -`) or a file
  (replayed; `follow=True` tails it). Lines that are not events show as log lines.

A source is `start(publish)` / `stop()`: it runs in a daemon thread of its own (reads block; the process must be
able to quit while `kubectl logs -f` still holds the pipe open), hands lines to a `Feed` and reports a
`SourceState` through the same `publish` (the app's bus is thread-safe to publish on).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import IO, Protocol

import httpx

from regtui.oci.refs import is_loopback_host
from regtui.registry.events import Event
from regtui.remote import Credentials, RegistryClient, RemoteError, docker_credentials
from regtui.remote.auth import Lookup
from regtui.remote.client import _ssl_cause
from regtui.watch.feed import Feed, SourceState

EVENTS_PATH = "/_regtui/events"
FOLLOW_EVERY = 0.25  # seconds between looks at a followed file that has no new line
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 10.0)  # seconds before each reconnect attempt; the last repeats
HINT_AFTER = 20  # lines without a JSON object before the status line says how to get events
READ_TIMEOUT = 45.0  # the server sends a keepalive every 15 s: three missed ones mean the connection is dead


class EventSource(Protocol):
    label: str

    def start(self, publish: Callable[[Event | SourceState], None]) -> None: ...

    def stop(self) -> None: ...


class _Threaded:
    def __init__(
        self, label: str, since: float | None = None, until: float | None = None, export: IO[str] | None = None
    ):
        self.label = label
        self.since, self.until, self.export = since, until, export
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.state: SourceState | None = None

    def start(self, publish: Callable[[Event | SourceState], None]) -> None:
        self.publish = publish
        self.feed = Feed(publish, self.since, self.until, self.export)
        self.thread = threading.Thread(target=self._main, name=f"regtui-watch {self.label}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def report(self, state: str, detail: str | None = None) -> None:
        self.state = SourceState(state, self.label, detail)
        self.publish(self.state)

    def _main(self) -> None:
        try:
            self.run()
        except Exception as e:  # a bug here must show, not kill the UI
            self.report("failed", f"{type(e).__name__}: {e}")

    def run(self) -> None:
        raise NotImplementedError


class LinesSource(_Threaded):
    """JSON log lines from `stream` (binary; stdin) or the file at `path`; `follow` tails the file."""

    def __init__(self, stream: IO[bytes] | None = None, path: str | None = None, follow: bool = False, **kw):
        super().__init__(path or "stdin", **kw)
        self.stream, self.path, self.follow = stream, path, follow

    def run(self) -> None:
        if self.path is not None:
            try:
                f: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed by the `with f` below
            except OSError as e:
                self.report("failed", f"cannot read {self.path}: {e.strerror or e}")
                return
        else:
            assert self.stream is not None
            f = self.stream
        self.report("reading")
        partial = b""
        with f:
            while not self.stopping.is_set():
                chunk = f.readline()
                if chunk.endswith(b"\n") or (chunk and not self.follow):
                    self.feed.line((partial + chunk).decode("utf-8", "replace"))
                    partial = b""
                    if self.feed.lines == HINT_AFTER and not self.feed.objects:
                        self.report(self.state.state if self.state else "reading", self.feed.summary())
                    continue
                partial += chunk  # a line still being written
                if not (self.follow and self.path):
                    break
                if self.state is None or self.state.state != "following":
                    self.report("following", f"{self.feed.summary()} so far")
                if _truncated(f, self.path):
                    f.seek(0)
                    partial = b""
                self.stopping.wait(FOLLOW_EVERY)
        if not self.stopping.is_set():
            self.report("ended", self.feed.summary())


def _truncated(f: IO[bytes], path: str) -> bool:
    """The followed file was truncated or replaced by a shorter one (log rotation): read it from the start."""
    try:
        return os.stat(path).st_size < f.tell()
    except OSError:
        return False


def events_url(url: str) -> str:
    """The stream's URL from what the user typed: a registry URL or the stream's own; `host:port` is HTTPS unless
    it is the loopback (as docker and `regtui push` treat registries)."""
    text = url.strip().rstrip("/")
    if "://" not in text:
        text = f"{'http' if is_loopback_host(text.split('/', 1)[0]) else 'https'}://{text}"
    return text if text.endswith(EVENTS_PATH) else text + EVENTS_PATH


class _Retry(Exception):
    """The connection ended or failed in a way worth trying again."""


class _Fatal(Exception):
    """Trying again will not help (wrong URL, no or wrong credentials)."""


class SseSource(_Threaded):
    """TLS and auth as `push` and `diff` (regtui.remote): `ca` (a PEM file) or `insecure`; `credentials`, else
    docker's config.json (`lookup`) on the first 401. Raises ValueError for a CA file that cannot be loaded."""

    def __init__(
        self,
        url: str,
        *,
        ca: str | None = None,
        insecure: bool = False,
        credentials: Credentials | None = None,
        lookup: Lookup = docker_credentials,
        backoff: tuple[float, ...] = BACKOFF,
        since: float | None = None,
        until: float | None = None,
        export: IO[str] | None = None,
    ):
        self.url = events_url(url)
        super().__init__(self.url.removesuffix(EVENTS_PATH), since=since, until=until, export=export)
        parsed = httpx.URL(self.url)
        self.scheme = parsed.scheme
        # The shared client's pieces: its TLS settings and diagnosis, and its httpx.Auth flow (basic or bearer).
        self.remote = RegistryClient(
            parsed.netloc.decode(),
            scheme=parsed.scheme,
            ca=ca,
            insecure=insecure,
            credentials=credentials,
            lookup=lookup,
        )
        try:
            self.verify = self.remote._verify()
        except RemoteError as e:
            raise ValueError(e.line()) from None
        self.backoff = backoff
        self.last_id: str | None = None
        self.instance: str | None = None
        self.connections = 0
        self._got_data = False

    def run(self) -> None:
        failures = 0
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
        with httpx.Client(
            verify=self.verify, timeout=timeout, auth=self.remote.auth, headers={"User-Agent": "regtui-watch"}
        ) as client:
            while not self.stopping.is_set():
                if not self.connections and not failures:
                    self.report("connecting")
                try:
                    self._once(client)
                    reason = "the server ended the stream"
                except _Fatal as e:
                    self.report("failed", str(e))
                    return
                except RemoteError as e:  # a credential helper that is missing or fails
                    self.report("failed", e.line())
                    return
                except _Retry as e:
                    reason = str(e)
                except httpx.HTTPError as e:
                    why = self.remote._connect_error(e, self.scheme)  # the same words as push and diff
                    reason = f"{why.what} ({why.hint})" if why.hint else why.what
                    if _ssl_cause(e) is not None:  # a certificate or TLS mismatch does not go away by waiting
                        self.report("failed", reason)
                        return
                if self.stopping.is_set():
                    return
                if self._got_data:  # it worked for a while: start the backoff over
                    failures = 0
                delay = self.backoff[min(failures, len(self.backoff) - 1)]
                failures += 1
                self.report("reconnecting", f"in {delay:g} s: {reason}")
                self.stopping.wait(delay)

    def _once(self, client: httpx.Client) -> None:
        self._got_data = False
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        with client.stream("GET", self.url, headers=headers) as r:
            if r.status_code in (401, 403):
                raise _Fatal(self.remote.auth.rejected(r.status_code, "", None).line())
            if r.status_code == 404:
                raise _Fatal(f"no event stream at {self.url}: start the server with `regtui serve --events`")
            if r.status_code != 200:
                raise _Retry(f"HTTP {r.status_code} from {self.url}")
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                raise _Fatal(
                    f"{self.url} is not an event stream (Content-Type "
                    f"{r.headers.get('content-type')!r}): is this a regtui serve --events?"
                )
            self.connections += 1
            self.report("connected")
            self._read(r)

    def _read(self, r: httpx.Response) -> None:
        data: list[str] = []
        event_id: str | None = None
        for line in r.iter_lines():
            if self.stopping.is_set():
                return
            if line == "":
                if data:
                    self._dispatch(event_id, "\n".join(data))
                data, event_id = [], None
            elif line.startswith(":"):
                continue  # keepalive
            else:
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "data":
                    data.append(value)
                elif field == "id":
                    event_id = value

    def _dispatch(self, event_id: str | None, data: str) -> None:
        self._got_data = True
        if event_id:
            instance = event_id.split("-", 1)[0]
            if self.instance is not None and instance != self.instance:
                self.feed.reset()  # a restarted server: its ids and pull keys start over
            self.instance = instance
            self.last_id = event_id
        self.feed.line(data)


def make_source(
    spec: str,
    *,
    stdin: IO[bytes] | None = None,
    follow: bool = False,
    since: float | None = None,
    until: float | None = None,
    export: IO[str] | None = None,
    ca: str | None = None,
    insecure: bool = False,
    credentials: Credentials | None = None,
    lookup: Lookup = docker_credentials,
) -> EventSource:
    """`regtui watch SPEC`: `-` (stdin), an existing file, or a registry URL (`host:port` too).

    Raises ValueError with one line that says what is wrong and what to do."""
    if spec == "-":
        if follow:
            raise ValueError("--follow tails a FILE; standard input is followed anyway")
        return LinesSource(stream=stdin, since=since, until=until, export=export)
    if os.path.exists(spec):
        if os.path.isdir(spec):
            raise ValueError(f"{spec} is a folder; give a log file of `regtui serve --log-format json` lines")
        return LinesSource(path=spec, follow=follow, since=since, until=until, export=export)
    if follow:
        raise ValueError("--follow tails a FILE; a URL is followed anyway")
    if "://" in spec and not spec.startswith(("http://", "https://")):
        raise ValueError(f"{spec}: only http:// and https:// URLs can be watched")
    host = spec.split("://", 1)[-1].split("/", 1)[0]
    if not host or " " in spec:
        raise ValueError(f"{spec}: no such file, and not a registry URL (give -, a FILE or http(s)://HOST:PORT)")
    if "://" not in spec and ":" not in host and "." not in host and host != "localhost":
        raise ValueError(f"{spec}: no such file, and not a registry URL (give -, a FILE or http(s)://HOST:PORT)")
    return SseSource(
        spec, ca=ca, insecure=insecure, credentials=credentials, lookup=lookup, since=since, until=until, export=export
    )
