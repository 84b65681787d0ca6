"""The `regtui` command: `regtui [ARCHIVE...]` opens the TUI; subcommands inspect, verify, serve, diff, push.

The top layer: it parses options, opens archives and renders what the domain (`regtui.oci`), the server
(`regtui.registry`), the pusher (`regtui.push`) and the TUI (`regtui.tui`) produce; none of those import it.

One module per command, each defining a click command named `command`; `common.py` holds what they share
(`fail`, `open_or_fail`, the `--expect` options). To add a command, e.g. `regtui files`:

1. write `regtui/cli/files.py` with `@click.command("files") def command(...)` (import heavy modules inside
   the function: every command module is imported on each start);
2. add `"files"` to `COMMANDS` below.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

COMMANDS = ("tui", "inspect", "verify", "serve", "diff", "push")  # modules of this package; help sorts them


class DefaultGroup(click.Group):
    """A group whose first argument may be an archive instead of a command: `regtui seed-image.tar`."""

    default_command = "tui"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        elif not args:
            args = [self.default_command]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]},
             subcommand_metavar="ARCHIVE... | COMMAND [ARGS]...")
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


def _register(group: click.Group) -> None:
    for name in COMMANDS:
        command: Any = importlib.import_module(f"{__name__}.{name}").command
        group.add_command(command, name)


_register(main)
