"""`regtui watch URL|-|FILE`: the Requests and Pulls views of a registry that runs elsewhere.

The events come from `regtui serve --events` (URL), from `--log-format json` lines on standard input
(`kubectl logs -f deploy/seed | regtui watch -`) or from a saved log (FILE, `--follow` tails it).
"""

from __future__ import annotations

import os
import sys

import click

from regtui.cli.common import EXIT_FAILED, check_connection_options, fail, read_credentials


def _keyboard_on_tty() -> None:
    """Standard input was the log or the password: give the TUI the terminal for keys (as less and fzf do)."""
    if os.isatty(0):
        return
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        fail("no terminal for the keyboard: run regtui watch in a terminal (standard input is the log)")
    os.dup2(tty, 0)
    os.close(tty)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 now is the terminal


@click.command("watch")
@click.argument("source", metavar="URL|-|FILE")
@click.option("--follow", "-f", is_flag=True, help="FILE: keep reading lines appended to it (like tail -f).")
@click.option("--since", metavar="WHEN", help="Only events from then on: 10m, 2h, 1d ago or an ISO 8601 time.")
@click.option("--until", metavar="WHEN", help="Only events up to then: 10m, 2h, 1d ago or an ISO 8601 time.")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE",
    help="Also write what is watched to FILE as JSON lines (the --log-format json schema).",
)
@click.option("--ca", type=click.Path(dir_okay=False), help="URL: PEM file of the CA that signed its certificate.")
@click.option("--insecure", is_flag=True, help="URL: skip TLS certificate verification.")
@click.option("--username", "-u", help="URL: user name (the password comes from --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="URL: read the password from standard input.")
def command(source, follow, since, until, export_path, ca, insecure, username, password_stdin) -> None:
    """Watch requests and pulls of a regtui registry that runs elsewhere, in the TUI.

    URL: a `regtui serve --events` (reconnects when it drops). -: `--log-format json` lines on standard input,
    e.g. `kubectl logs -f deploy/seed | regtui watch -`. FILE: a saved log (replayed; --follow tails it).
    Credentials for a URL come from --username/--password-stdin or from docker's config.json.
    """
    from regtui.watch.feed import parse_when
    from regtui.watch.sources import make_source

    check_connection_options(ca, insecure, username, password_stdin)
    if password_stdin and source == "-":
        fail("--password-stdin and `watch -` both want standard input; use docker login for the password")
    if source == "-" and os.isatty(0):
        fail(
            "regtui watch -: standard input is a terminal; pipe a JSON log into it, e.g. "
            "kubectl logs -f deploy/seed | regtui watch -"
        )
    when: dict[str, float | None] = {"since": None, "until": None}
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            try:
                when[name] = parse_when(value)
            except ValueError as e:
                fail(f"--{name}: {e}")
    credentials = read_credentials(username)
    stdin = os.fdopen(os.dup(0), "rb") if source == "-" else None
    export = None
    if export_path:
        if os.path.exists(source) and os.path.exists(export_path) and os.path.samefile(source, export_path):
            fail(f"--export {export_path} is the log being watched; write the export elsewhere")
        try:
            export = open(export_path, "w", encoding="utf-8")  # noqa: SIM115 - open while the app runs
        except OSError as e:
            fail(f"--export {export_path}: cannot write: {e.strerror or e}")
    try:
        src = make_source(
            source,
            stdin=stdin,
            follow=follow,
            export=export,
            ca=ca,
            insecure=insecure,
            credentials=credentials,
            since=when["since"],
            until=when["until"],
        )
    except ValueError as e:
        fail(str(e))
    _keyboard_on_tty()
    from regtui.tui.app import RegtuiApp

    app = RegtuiApp([], source=src)
    try:
        app.run()
    finally:
        src.stop()
        if export is not None:
            export.close()
    state = app.source_state
    if state is not None and state.state == "failed":
        fail(f"{state.label}: {state.detail}", code=EXIT_FAILED)
