"""The `regtui` command: `regtui [ARCHIVE...]` opens the TUI; subcommands inspect, verify, serve, diff, push,
cache, watch, files, cat.

The top layer: it parses options, opens archives and renders what the domain (`regtui.oci`), the server
(`regtui.registry`), the pusher (`regtui.push`) and the TUI (`regtui.tui`) produce; none of those import it.

One module per command, each defining a click command named `command`; `common.py` holds what they share
(`fail`, `open_or_fail`, the `--expect` options). To add a command, e.g. `regtui files`:

1. write `regtui/cli/files.py` with `@click.command("files") def command(...)` (it is imported only when
   `regtui files` runs, or for `--help`);
2. add `"files"` to `COMMANDS` below.
"""

from __future__ import annotations

import importlib

import click

# modules here, each with a `command`
COMMANDS = ("tui", "inspect", "verify", "serve", "diff", "push", "cache", "watch", "files", "cat")


class DefaultGroup(click.Group):
    """A group whose first argument may be an archive instead of a command: `regtui seed-image.tar`.

    Commands load when used (`--help` loads them all): `regtui inspect` never imports Textual or httpx.
    """

    default_command = "tui"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in COMMANDS and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        elif not args:
            args = [self.default_command]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command: click.Command = importlib.import_module(f"{__name__}.{cmd_name}").command
        return command


@click.group(
    cls=DefaultGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    subcommand_metavar="ARCHIVE... | COMMAND [ARGS]...",
)
@click.version_option(package_name="regtui")
def main() -> None:
    """Open, inspect, verify and serve container image archives (seed-image.tar, docker save, OCI).

    `regtui ARCHIVE...` opens the interactive inspector (the same as `regtui tui ARCHIVE...`).

    \b
    Exit codes, for every command:
      0  done, and every check held
      1  a check failed: verification, an --expect digest not served, a diff mismatch,
         or the work itself failed (a push refused, a port in use)
      2  bad arguments or input that cannot be read: options, archives, references
    """
