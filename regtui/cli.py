"""The `regtui` command: `regtui [ARCHIVE...]` opens the TUI; subcommands inspect, verify, serve, diff, push."""

from __future__ import annotations

import sys

import click

from regtui.contents_cli import ci_options
from regtui.forensics_cli import expect_options
from regtui.oci.errors import ArchiveError


class DefaultGroup(click.Group):
    """A group whose first argument may be an archive instead of a command: `regtui seed-image.tar`."""

    default_command = "tui"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        elif not args:
            args = [self.default_command]
        return super().parse_args(ctx, args)


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit; never a traceback."""
    click.echo(f"regtui: error: {message}", err=True)
    sys.exit(code)


def open_or_fail(paths):
    from regtui.oci import open_archive

    archives = []
    for p in paths:
        try:
            archives.append(open_archive(p))
        except ArchiveError as e:
            fail(e.line())
    return archives


def demo_paths(paths) -> list[str]:
    if paths:
        return list(paths)
    from regtui.oci.demo import demo_archive_path

    return [demo_archive_path()]


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="regtui")
def main() -> None:
    """Open, inspect, verify and serve container image archives (seed-image.tar, docker save, OCI)."""


@main.command()
@click.argument("archives", nargs=-1, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the registry listens on (s starts it).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port it listens on.")
@expect_options
def tui(archives, host, port, expect, expect_file, expect_manifest) -> None:
    """Open the interactive inspector on ARCHIVES (the bundled demo image when none is given)."""
    from regtui.forensics_cli import load_expectations, tui_kwargs

    paths = demo_paths(archives)
    expectations, _ = load_expectations(expect, expect_file, expect_manifest)
    try:
        from regtui.tui.app import run_tui
    except ImportError:  # the TUI lands later; until then show the inspection
        for a in open_or_fail(paths):
            from regtui.oci.inspect import render_inspect

            render_inspect(a)
        return
    run_tui(paths, host=host, port=port, **tui_kwargs(run_tui, expectations))


@main.command()
@click.argument("archives", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@expect_options
def inspect(archives, as_json: bool, expect, expect_file, expect_manifest) -> None:
    """Show format, images, tags, platforms, config, layers and manifests of ARCHIVES."""
    from regtui.forensics_cli import apply_cli_expectations, json_results, render_results
    from regtui.oci.inspect import inspect_dict, render_inspect

    archives_ = open_or_fail(demo_paths(archives))
    results = apply_cli_expectations(archives_, expect, expect_file, expect_manifest)
    if as_json:
        import json

        data = [inspect_dict(a) for a in archives_]
        json_results(data, archives_, results)
        click.echo(json.dumps(data if len(data) > 1 else data[0], indent=2))
        return
    for a in archives_:
        render_inspect(a)
    render_results(results)


@main.command()
@click.argument("archives", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-cache", is_flag=True, help="Verify again even if a cached result exists.")
@expect_options
@ci_options
def verify(archives, as_json: bool, no_cache: bool, expect, expect_file, expect_manifest, **thresholds) -> None:
    """Check every digest, size and diff_id of ARCHIVES; exit 0 only when everything holds.

    With dive's CI thresholds, also check each image's wasted bytes and efficiency."""
    from regtui.forensics_cli import all_matched, apply_cli_expectations, render_results

    archives_ = open_or_fail(archives)
    results = apply_cli_expectations(archives_, expect, expect_file, expect_manifest)
    from regtui.oci.verify_cli import run_verify

    code = run_verify(archives_, as_json=as_json, use_cache=not no_cache)
    render_results(results, err=as_json)  # stdout stays one JSON document
    from rich.console import Console

    from regtui.contents_cli import check_thresholds

    lean = check_thresholds(archives_, console=Console(stderr=as_json), **thresholds)
    sys.exit(code or (0 if all_matched(results) and lean else 1))


def _register_optional() -> None:
    # Each part owns its command; a part not yet built simply adds nothing.
    import importlib

    for module, name in (("regtui.registry.command", "serve"), ("regtui.forensics_cli", "diff"),
                         ("regtui.push.command", "push"), ("regtui.contents_cli", "files"),
                         ("regtui.contents_cli", "cat")):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue
            raise
        main.add_command(getattr(mod, name))


_register_optional()
