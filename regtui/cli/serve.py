"""`regtui serve`: serve archives as a read-only registry, headless, one log line per request."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time

import click

from regtui.cli.common import (
    apply_cli_expectations,
    demo_paths,
    expect_options,
    fail,
    open_or_fail,
    render_results,
)


@click.command("serve")
@click.argument("archives", nargs=-1, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any free port)."
)
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="NAME",
    help="Also answer under this repository name (repeatable), e.g. as a cluster's seed registry.",
)
@click.option("--any-name", is_flag=True, help="Answer under any valid repository name.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="PEM certificate for HTTPS.")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="PEM private key for --tls-cert.")
@click.option(
    "--tls-self-signed",
    is_flag=True,
    help="HTTPS with a certificate generated for --host; prints its SHA-256 fingerprint.",
)
@click.option(
    "--htpasswd",
    type=click.Path(dir_okay=False),
    help="Require HTTP Basic auth against this htpasswd file (bcrypt entries, htpasswd -B).",
)
@click.option(
    "--log-format",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="One line per finished request: text or JSON.",
)
@click.option(
    "--grace",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds requests in flight may take to finish after SIGTERM/SIGINT.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes accepting on the same socket: more requests/s on several cores. Each groups "
    "only the pulls whose requests it answers (see README).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    metavar="N",
    help="Open connections at most, per process; past it the oldest idle ones are closed. "
    "[default: from the open-files limit, raised to its hard limit]",
)
@click.option(
    "--refuse-corrupt",
    is_flag=True,
    help="Verify the archives first (or reuse a cached result) and answer blobs that failed with "
    "BLOB_UNKNOWN instead of bytes that cannot match their digest.",
)
@click.option(
    "--events",
    is_flag=True,
    help="Also serve the event stream at GET /_regtui/events (Server-Sent Events), for `regtui watch URL`.",
)
@expect_options
def command(
    archives,
    host,
    port,
    names,
    any_name,
    tls_cert,
    tls_key,
    tls_self_signed,
    htpasswd,
    log_format,
    grace,
    workers,
    max_connections,
    refuse_corrupt,
    events,
    expect,
    expect_file,
    expect_manifest,
) -> None:
    """Serve ARCHIVES read-only over the OCI distribution API (the demo image when none is given).

    Clients pull e.g. `127.0.0.1:5000/registry:2.8.1`; see the README for name mapping, TLS and auth.
    """
    from regtui.oci.refs import aliases, is_name
    from regtui.registry.app import create_app
    from regtui.registry.auth import HtpasswdError
    from regtui.registry.events import EventBus, ServerState
    from regtui.registry.logformat import LineLog
    from regtui.registry.server import TLS, BindError, bind_socket
    from regtui.registry.server import serve as run_server
    from regtui.registry.tls import check_pair, self_signed

    for n in names:
        if not is_name(n):
            fail(f"--name {n!r} is not a valid repository name (lowercase letters, digits, . _ - and /)")
    if events and workers > 1:
        fail("--events needs --workers 1: each worker process sees only the requests it answers")
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    if tls_self_signed and tls_cert:
        fail("use either --tls-self-signed or --tls-cert/--tls-key, not both")
    archives_ = open_or_fail(demo_paths(archives))
    results = apply_cli_expectations(archives_, expect, expect_file, expect_manifest)  # before the app

    def echo(line: str) -> None:
        if workers > 1:  # one write per line: lines of several processes never interleave mid-line
            os.write(sys.stdout.fileno(), (line + "\n").encode(errors="replace"))
        else:
            click.echo(line)

    as_json = log_format == "json"

    def say(text: str, event: str, **fields) -> None:
        """A start-up line: text, or in JSON mode one JSON object (every stdout line parses)."""
        echo(json.dumps({"event": event, "time": _now(), **fields, "message": text}) if as_json else text)

    if as_json:
        for r in results:
            say(r.line(), "expect", **r.to_dict())
    else:
        render_results(results)
    refuse = corrupt_blobs(archives_, say) if refuse_corrupt else None

    bus = EventBus()
    try:
        app = create_app(archives_, bus=bus, names=list(names), any_name=any_name, htpasswd=htpasswd, refuse=refuse)
    except HtpasswdError as e:
        fail(str(e))
    try:
        sock = bind_socket(host, port, reuse_port=workers > 1)
    except BindError as e:
        fail(str(e), code=1)

    tls = None
    tmpdir = None
    try:
        if tls_self_signed:
            tmpdir = tempfile.mkdtemp(prefix="regtui-tls-")
            certfile, keyfile, fp = self_signed(host, tmpdir)
            tls = TLS(certfile, keyfile)
            say(
                f"TLS: self-signed certificate for {host} (valid 30 days, removed on exit): {certfile}",
                "tls",
                certificate=certfile,
                sha256=fp,
            )
            say(f"TLS: SHA-256 fingerprint {fp}", "tls", sha256=fp)
        elif tls_cert:
            try:
                fp = check_pair(tls_cert, tls_key)
            except ValueError as e:
                fail(str(e))
            tls = TLS(tls_cert, tls_key)
            say(f"TLS: {tls_cert} SHA-256 fingerprint {fp}", "tls", certificate=tls_cert, sha256=fp)

        for a in archives_:
            for repo, tag in a.tags():
                say(
                    f"serving {repo}:{tag} from {a.path} (also as {', '.join(aliases(repo)[1:]) or '-'})",
                    "serving",
                    repository=repo,
                    tag=tag,
                    archive=a.path,
                    aliases=aliases(repo)[1:],
                )
        for n in names:
            say(f"serving every image also as {n}", "serving", name=n)
        if any_name:
            say("serving every image under any repository name", "serving", any_name=True)
        if htpasswd:
            say(f"auth: HTTP Basic, users from {htpasswd}", "auth", htpasswd=htpasswd)
        if events:
            from regtui.registry.watchfeed import PATH, install

            install(app)
            say(f"events: GET {PATH} (Server-Sent Events, for `regtui watch URL`)", "events", path=PATH)
        log = LineLog(echo, log_format)
        sys.stdout.flush()
        children, worker = fork_workers(workers)
        if worker:
            # A socket of its own on the same port: the kernel balances connections across them (on one
            # shared socket, whichever process woke first accepted a whole burst of them).
            try:
                own = bind_socket(host, sock.getsockname()[1], reuse_port=True, joining=True)
            except BindError as e:
                say(f"worker {worker}: {e}", "error", worker=worker)
                os._exit(1)
            sock.close()
            sock = own
            # The first process says when the server starts and stops, for all of them.
            bus.subscribe(lambda e: None if isinstance(e, ServerState) and e.state != "failed" else log(e))
        else:
            bus.subscribe(log)
        code = asyncio.run(_run(run_server, app, sock, host, tls, bus, grace, children, max_connections))
        if worker:
            os._exit(code)  # leave the shared socket and the TLS folder to the first process
        code = max([code, *wait_workers(children)])
    finally:
        sock.close()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    sys.exit(code)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def corrupt_blobs(archives: list, say) -> dict[str, str]:
    """Blob digest -> why it cannot verify, from a cached verification of these bytes or a fresh one."""
    from regtui.oci.cache import load_report, save_report
    from regtui.oci.verify import verify_archive

    refuse: dict[str, str] = {}
    for a in archives:
        report = load_report(a)
        if report is None:
            report = verify_archive(a)
            save_report(a, report)
        bad = report.bad_blobs(a.blobs)
        for digest, why in bad.items():
            say(f"refusing blob {digest} of {a.path}: {why}", "refuse", digest=digest, archive=a.path, reason=why)
        refuse.update(bad)
        if not bad:
            say(f"verified {a.path}: every blob matches its digest", "verified", archive=a.path)
    return refuse


def fork_workers(n: int) -> tuple[list[int], int]:
    """Fork n-1 copies of this process (app built, socket bound, no event loop yet): (children, our index)."""
    children: list[int] = []
    parent = os.getpid()
    for index in range(1, n):
        pid = os.fork()
        if pid == 0:
            die_with(parent)
            return [], index
        children.append(pid)
    return children, 0


def die_with(parent: int) -> None:
    """SIGTERM this worker when its parent dies, even by SIGKILL: orphans kept serving the port (Linux prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def wait_workers(children: list[int]) -> list[int]:
    codes = []
    for pid in children:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            continue
        codes.append(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
    return codes


async def _run(run_server, app, sock, host, tls, bus, grace, children=(), max_connections=None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping(sig: int) -> None:
        stop.set()
        for pid in children:  # SIGTERM to the first process stops them all
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping, sig)
    try:
        await run_server(
            app,
            host=host,
            sock=sock,
            shutdown_trigger=stop.wait,
            tls=tls,
            bus=bus,
            grace=grace,
            max_connections=max_connections,
        )
    except Exception:  # reported on the bus as a failed state
        stopping(signal.SIGTERM)
        return 1
    return 0
