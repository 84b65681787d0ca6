"""`regtui diff ARCHIVE REGISTRY/REPO:TAG`: compare an archive's image with what a registry serves.

The domain work is in `regtui.oci.forensics`; the upstream manifest comes through `regtui.remote` (with the
bearer token flow registries like Docker Hub ask for, and docker's credentials when the registry wants them).
"""

from __future__ import annotations

import asyncio
import json
import sys

import click

from regtui.cli.common import fail, open_one
from regtui.oci.forensics import Expectation, ExpectError, apply_to_archives, diff_manifests
from regtui.oci.model import Platform
from regtui.oci.refs import ImageRef, RemoteRef, familiar, parse_remote
from regtui.remote import RegistryClient, RemoteError, Unreachable
from regtui.remote.manifests import Upstream, fetch_upstream


async def _fetch(ref: RemoteRef, platform: Platform | None, insecure: bool, ca: str | None) -> Upstream:
    async with RegistryClient(ref.host, scheme=ref.scheme, ca=ca, insecure=insecure, retries=3) as client:
        return await fetch_upstream(client, ref, platform)


@click.command("diff")
@click.argument("archive", type=click.Path())
@click.argument("reference", metavar="REGISTRY/REPO[:TAG|@DIGEST]")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP and unverified TLS (loopback always may).")
@click.option("--ca", type=click.Path(exists=True, dir_okay=False), help="CA certificate to trust for TLS.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(archive, reference, insecure, ca, as_json) -> None:
    """Compare ARCHIVE's image with the manifest a registry serves for REFERENCE.

    Exit 0 when the archive serves (or reproduces) the upstream digest, 1 when it cannot and the difference
    is explained, 2 on errors.
    """
    from regtui.oci.errors import ArchiveError

    try:
        ref = parse_remote(reference)
    except ValueError as e:
        fail(f"{reference}: {e} (expected REGISTRY/REPO:TAG, e.g. 127.0.0.1:5000/registry:2.8.1)")
    try:
        arch = open_one(archive)
    except ArchiveError as e:
        fail(e.line())
    images = arch.images()
    name = familiar(ref.path)
    named = [i for i in images if i.repository == name]
    image = next((i for i in named if ref.tag in i.tags), named[0] if named else images[0])
    try:
        up = asyncio.run(_fetch(ref, image.platform, insecure, ca))
    except Unreachable as e:
        fail(f"cannot reach {e.where}: {e.what}" + (f" ({e.hint})" if e.hint else ""))
    except RemoteError as e:
        fail(e.line())
    exp_ref = ImageRef(name, ref.tag, up.digest) if named else None
    exp = Expectation(up.digest, exp_ref, str(ref), up.manifest, f"{ref.host}/{ref.path}@{up.digest}")
    default = {id(i): i.manifests[0] for i in images}  # what each image serves without --expect
    try:
        [result] = apply_to_archives([arch], [exp])
    except ExpectError as e:
        fail(str(e))
    shown = result.diff
    if shown is None and result.image is not None:
        # A recovered variant compared with itself would say "identical": compare regtui's own default.
        ours = default.get(id(result.image)) or result.manifest or result.image.manifest
        try:
            shown = diff_manifests(result.image, up.manifest, arch.blobs, up.config, ours=ours)
        except ExpectError:
            shown = None
    elif shown is not None and up.config is not None and result.image is not None and not result.matched:
        shown = diff_manifests(result.image, up.manifest, arch.blobs, up.config)
        result.explanation = f"{shown.verdict}: {shown.summary}"
    code = 0 if result.matched else 1
    if as_json:
        out = result.to_dict()
        out["upstream"] = {
            "reference": str(ref),
            "digest": up.digest,
            "mediaType": up.media_type,
            "index": up.index_digest,
        }
        out["diff"] = shown.to_dict() if shown else None
        click.echo(json.dumps(out, indent=2))
        sys.exit(code)
    click.echo(f"archive   {arch.path} ({arch.format_name}): {result.image_label() or '-'}")
    via = f" (the {image.platform or 'linux/amd64'} child of index {up.index_digest or ''})" if up.index else ""
    click.echo(f"upstream  {ref}: {up.digest}{via}")
    click.echo("")
    if shown is not None:
        click.echo(shown.render_text())
        click.echo("")
    if result.status == "matched-by-variant":
        name = result.image.repository if result.image else familiar(ref.path)
        click.echo(
            f"match: reproduced as {result.variant_description or result.variant} (variant {result.variant}); "
            "serve it for the tag "
            f"and by digest with:\n  regtui serve {archive} --expect {name}@{up.digest}"
        )
        if up.index_digest:
            click.echo(
                f"  to serve index {up.index_digest} too, save its bytes and add "
                f"--expect {name}@{up.index_digest} --expect-manifest INDEX.json"
            )
    elif result.matched or shown is None:
        click.echo(("match: " if result.matched else "no match: ") + result.explanation)
    sys.exit(code)
