"""Hostile-archive corpus (issue 2, "Bad input"): every case is built here, from the shared seed image or from
scratch, and run through `regtui inspect` and `regtui verify` as a user would.

Each case must end in a non-zero exit with ONE clear stderr line naming the member and the problem (`serve`
too, for archives that cannot be opened), or (for the legitimate link cases) work. Never a traceback, and nothing
written anywhere but the cache.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from regtui.oci import open_archive
from regtui.oci.errors import ArchiveError
from tests.conftest import SEED
from tests.helpers import tarkit as tk
from tests.helpers.support import free_port

CONFIG = "sha256:5583a8d908ca5bb3e6f9dc40948a2411040ea89c337cb700aeaacb72ca961196"
BIG_LAYER = "d45bb24b366559f0725f7094ea70dfd6bee1df82b9d40224b0d39ba01fef9ec4.tar.gz"
FIRST_LAYER = "a0fad04f89d2c6130bb51c0d9fd6d93738fa1a4b689031ef18c34d7b4761ed1c.tar.gz"
LAST_LAYER = "21fda50f9acf5cc238861dfd39b81454178b00e61aa3e3abd5d197b81b6bebd7.tar.gz"
HUGE = 17 * 1024 * 1024  # just over the 16 MiB metadata bound


@dataclass
class Case:
    build: Callable[[Path, dict], Path]
    needles: tuple[str, ...]  # what the error line must name (member, problem), case-insensitive
    outcome: str = "fatal"  # fatal: open refuses | flawed: opens, verify fails | fine: everything works
    uses: tuple[str, ...] = field(default_factory=tuple)  # session fixtures the builder needs
    commands: tuple[str, ...] = ("inspect", "verify")  # (+ serve for fatal cases)


CASES: dict[str, Case] = {}


def case(
    name: str,
    *needles: str,
    outcome: str = "fatal",
    uses: tuple[str, ...] = (),
    commands: tuple[str, ...] = ("inspect", "verify"),
):
    def deco(fn):
        CASES[name] = Case(fn, needles, outcome, uses, commands)
        return fn

    return deco


def seed_entries() -> list[tk.Entry]:
    return tk.read_entries(SEED)


def seed_with(tmp: Path, name: str, edit: Callable[[list[tk.Entry]], list[tk.Entry]]) -> Path:
    return tk.write_tar(tmp / f"{name}.tar", edit(seed_entries()))


def seed_manifest() -> list[dict]:
    return json.loads(next(e.data for e in seed_entries() if e.name == "manifest.json"))


def with_member(entries: list[tk.Entry], name: str, data: bytes) -> list[tk.Entry]:
    return [tk.file(name, data) if e.name == name else e for e in entries]


def with_manifest(entries: list[tk.Entry], manifest) -> list[tk.Entry]:
    data = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    return with_member(entries, "manifest.json", data)


def cut(tmp: Path, name: str, size: int) -> Path:
    out = tmp / f"{name}.tar"
    with open(SEED, "rb") as f:
        out.write_bytes(f.read(size))
    return out


def offsets():
    return tk.member_offsets(SEED)


# -- not a tar / compressed / truncated ----------------------------------------------------------------
@case("not-a-tar", "not a tar")
def _(tmp, fx):
    p = tmp / "notes.tar"
    p.write_bytes(b"this is a text file that someone named .tar\n" * 200)
    return p


@case("empty-file", "not a tar")
def _(tmp, fx):
    p = tmp / "empty.tar"
    p.write_bytes(b"")
    return p


@case("random-bytes", "not a tar")
def _(tmp, fx):
    p = tmp / "random.tar"
    p.write_bytes(os.urandom(64 * 1024))
    return p


@case("gzip-outer", "compressed", "gunzip")
def _(tmp, fx):
    p = tmp / "seed.tar.gz"
    p.write_bytes(gzip.compress(SEED.read_bytes(), compresslevel=1))
    return p


@case("zstd-outer", outcome="fine")  # unpacked once into the cache (as a Zarf .tar.zst is), then read from it
def _(tmp, fx):
    import zstandard

    p = tmp / "seed.tar.zst"
    p.write_bytes(zstandard.ZstdCompressor(level=1).compress(SEED.read_bytes()))
    return p


@case("cut-in-first-header", "not a tar")
def _(tmp, fx):
    return cut(tmp, "cut-header0", 300)


@case("cut-in-config-data", CONFIG, "cut off")
def _(tmp, fx):
    _, data, _ = offsets()[CONFIG]
    return cut(tmp, "cut-config", data + 500)


@case("cut-in-second-header", CONFIG, "damaged")
def _(tmp, fx):
    header, _, _ = offsets()[FIRST_LAYER]
    return cut(tmp, "cut-header1", header + 200)


@case("cut-in-big-layer", BIG_LAYER, "cut off")
def _(tmp, fx):
    _, data, size = offsets()[BIG_LAYER]
    return cut(tmp, "cut-layer", data + size // 2)


@case("cut-before-manifest", "manifest.json")
def _(tmp, fx):
    header, _, _ = offsets()["manifest.json"]
    return cut(tmp, "cut-before-manifest", header)


@case("cut-in-manifest-data", "manifest.json", "cut off")
def _(tmp, fx):
    _, data, _ = offsets()["manifest.json"]
    return cut(tmp, "cut-manifest", data + 100)


@case("no-end-of-archive-blocks", outcome="fine")
def _(tmp, fx):
    # Every member complete, only tar's two zero end blocks missing: GNU tar reads it, so do we.
    _, data, size = offsets()["manifest.json"]
    return cut(tmp, "no-eof", data + (size + 511) // 512 * 512)


@case("too-many-members", "100000 members", commands=("inspect",))  # the others open it the same way
def _(tmp, fx):
    # Empty members only: a small file whose index would grow memory with every header.
    import tarfile

    p = seed_with(tmp, "many-members", lambda es: es)
    _, data, size = tk.member_offsets(p)["manifest.json"]
    with open(p, "r+b") as f:
        f.seek(data + (size + 511) // 512 * 512)  # over the end-of-archive blocks
        for i in range(100_001):
            f.write(tarfile.TarInfo(f"junk/{i}").tobuf(format=tarfile.USTAR_FORMAT))
        f.write(bytes(1024))
    return p


# -- missing members -----------------------------------------------------------------------------------
@case("missing-layer", BIG_LAYER, "missing")
def _(tmp, fx):
    return seed_with(tmp, "missing-layer", lambda es: [e for e in es if e.name != BIG_LAYER])


@case("missing-config", CONFIG, "missing")
def _(tmp, fx):
    return seed_with(tmp, "missing-config", lambda es: [e for e in es if e.name != CONFIG])


@case("manifest-lists-unknown-layer", "nope.tar.gz", "missing")
def _(tmp, fx):
    m = seed_manifest()
    m[0]["Layers"].append("nope.tar.gz")
    return seed_with(tmp, "unknown-layer", lambda es: with_manifest(es, m))


@case("no-manifest-json", "manifest.json", "index.json")
def _(tmp, fx):
    return seed_with(tmp, "no-manifest", lambda es: [e for e in es if e.name != "manifest.json"])


# -- traversal names -----------------------------------------------------------------------------------
@case("dotdot-member", "../../evil.sh", "..")
def _(tmp, fx):
    return seed_with(tmp, "dotdot", lambda es: es + [tk.file("../../evil.sh", b"#!/bin/sh\nrm -rf ~\n")])


@case("absolute-member", "/etc/cron.d/evil", "absolute")
def _(tmp, fx):
    return seed_with(tmp, "absolute", lambda es: [tk.file("/etc/cron.d/evil", b"* * * * * root true\n"), *es])


@case("dotdot-inside-name", "blobs/../../escape", "..")
def _(tmp, fx):
    return seed_with(tmp, "dotdot-mid", lambda es: es + [tk.file("blobs/../../escape", b"x")])


@case("manifest-names-absolute-layer", "/etc/passwd", "missing")
def _(tmp, fx):
    # A name in manifest.json is looked up among members, never on the file system.
    m = seed_manifest()
    m[0]["Layers"][0] = "/etc/passwd"
    return seed_with(tmp, "abs-ref", lambda es: with_manifest(es, m))


@case("manifest-names-dotdot-config", "../../../etc/passwd", "missing")
def _(tmp, fx):
    m = seed_manifest()
    m[0]["Config"] = "../../../etc/passwd"
    return seed_with(tmp, "dotdot-ref", lambda es: with_manifest(es, m))


# -- links ---------------------------------------------------------------------------------------------
def layer_as_link(tmp: Path, name: str, link: tk.Entry, extra: list[tk.Entry] = ()) -> Path:
    def edit(es):
        return [link if e.name == BIG_LAYER else e for e in es] + list(extra)

    return seed_with(tmp, name, edit)


@case("symlink-absolute", BIG_LAYER, "outside", "/etc/passwd")
def _(tmp, fx):
    return layer_as_link(tmp, "sym-abs", tk.sym(BIG_LAYER, "/etc/passwd"))


@case("symlink-dotdot", BIG_LAYER, "outside")
def _(tmp, fx):
    return layer_as_link(tmp, "sym-dotdot", tk.sym(BIG_LAYER, "../../../../etc/passwd"))


@case("symlink-via-subdir-dotdot", "outside")
def _(tmp, fx):
    # d/x -> ../../secret climbs out even though it starts inside a folder
    return layer_as_link(tmp, "sym-subdir", tk.sym(BIG_LAYER, "d/x"), [tk.sym("d/x", "../../secret")])


@case("hardlink-absolute", BIG_LAYER, "outside")
def _(tmp, fx):
    return layer_as_link(tmp, "hard-abs", tk.hard(BIG_LAYER, "/etc/shadow"))


@case("hardlink-dotdot", BIG_LAYER, "outside")
def _(tmp, fx):
    return layer_as_link(tmp, "hard-dotdot", tk.hard(BIG_LAYER, "../outside.tar.gz"))


@case("symlink-loop", BIG_LAYER, "loop")
def _(tmp, fx):
    return layer_as_link(tmp, "sym-loop", tk.sym(BIG_LAYER, "a"), [tk.sym("a", "b"), tk.sym("b", "a")])


@case("symlink-self", BIG_LAYER, "loop")
def _(tmp, fx):
    return layer_as_link(tmp, "sym-self", tk.sym(BIG_LAYER, BIG_LAYER))


@case("hardlink-loop", BIG_LAYER, "loop")
def _(tmp, fx):
    return layer_as_link(tmp, "hard-loop", tk.hard(BIG_LAYER, "a"), [tk.hard("a", BIG_LAYER)])


@case("symlink-to-missing", "gone.tar.gz", "missing")
def _(tmp, fx):
    return layer_as_link(tmp, "sym-missing", tk.sym(BIG_LAYER, "gone.tar.gz"))


@case("symlink-to-folder", "somedir", "not a regular file")
def _(tmp, fx):
    return layer_as_link(tmp, "sym-dir", tk.sym(BIG_LAYER, "somedir"), [tk.folder("somedir")])


@case("manifest-json-symlink-out", "manifest.json", "outside")
def _(tmp, fx):
    return seed_with(
        tmp,
        "manifest-sym",
        lambda es: [tk.sym("manifest.json", "/etc/passwd") if e.name == "manifest.json" else e for e in es],
    )


@case("legit-symlink-layer", outcome="fine")
def _(tmp, fx):
    # The layer stored under another name, the listed name a relative symlink to it (as skopeo does).
    big = next(e for e in seed_entries() if e.name == BIG_LAYER)
    return layer_as_link(tmp, "sym-ok", tk.sym(BIG_LAYER, "store/./layer.bin"), [big.renamed("store/layer.bin")])


@case("legit-hardlink-layer", outcome="fine")
def _(tmp, fx):
    big = next(e for e in seed_entries() if e.name == BIG_LAYER)
    return layer_as_link(tmp, "hard-ok", tk.hard(BIG_LAYER, "store/layer.bin"), [big.renamed("store/layer.bin")])


@case("legit-skopeo-docker-archive", outcome="fine", uses=("docker_tar",))
def _(tmp, fx):
    # skopeo's legacy docker-archive: <id>/layer.tar are symlinks to ../<diffid>.tar
    return fx["docker_tar"]


# -- JSON ----------------------------------------------------------------------------------------------
@case("manifest-malformed-json", "manifest.json", "not valid json")
def _(tmp, fx):
    return seed_with(tmp, "bad-json", lambda es: with_manifest(es, b'[{"Config": "sha256:abc", "Layers": [}'))


@case("manifest-not-utf8", "manifest.json", "utf-8")
def _(tmp, fx):
    return seed_with(tmp, "not-utf8", lambda es: with_manifest(es, b'[{"Config": "\xff\xfe"}]'))


@case("config-malformed-json", CONFIG, "not valid json")
def _(tmp, fx):
    return seed_with(tmp, "bad-config", lambda es: with_member(es, CONFIG, b'{"architecture": "amd64",'))


@case("manifest-huge", "manifest.json", "bytes")
def _(tmp, fx):
    data = b'[{"Config": "' + b"A" * HUGE + b'"}]'
    return seed_with(tmp, "huge-manifest", lambda es: with_manifest(es, data))


@case("config-huge", CONFIG, "bytes")
def _(tmp, fx):
    return seed_with(tmp, "huge-config", lambda es: with_member(es, CONFIG, b'{"x": "' + b"y" * HUGE + b'"}'))


@case("manifest-deep", "manifest.json", "nests")
def _(tmp, fx):
    return seed_with(tmp, "deep", lambda es: with_manifest(es, b"[" * 200_000 + b"]" * 200_000))


@case("config-deep", CONFIG, "nests")
def _(tmp, fx):
    return seed_with(tmp, "deep-config", lambda es: with_member(es, CONFIG, b'{"a":' * 100_000 + b"1" + b"}" * 100_000))


# -- wrong JSON types ----------------------------------------------------------------------------------
def seed_manifest_edit(tmp: Path, name: str, change: Callable[[list[dict]], object]) -> Path:
    return seed_with(tmp, name, lambda es: with_manifest(es, change(seed_manifest())))


@case("manifest-is-object", "manifest.json", "list")
def _(tmp, fx):
    return seed_manifest_edit(tmp, "obj", lambda m: m[0])


@case("manifest-empty-list", "manifest.json", "no images")
def _(tmp, fx):
    return seed_manifest_edit(tmp, "empty-list", lambda m: [])


@case("manifest-entry-string", "manifest.json", "list")
def _(tmp, fx):
    return seed_manifest_edit(tmp, "entry-str", lambda m: ["sha256:abc"])


@case("layers-a-string", "manifest.json", "layers")
def _(tmp, fx):
    return seed_manifest_edit(tmp, "layers-str", lambda m: [{**m[0], "Layers": BIG_LAYER}])


@case("layers-hold-numbers", "manifest.json", "layers")
def _(tmp, fx):
    return seed_manifest_edit(tmp, "layers-num", lambda m: [{**m[0], "Layers": [1, 2]}])


@case("repotags-a-string", "manifest.json", "repotags")
def _(tmp, fx):
    return seed_manifest_edit(tmp, "tags-str", lambda m: [{**m[0], "RepoTags": "registry:2.8.1"}])


@case("config-a-number", "manifest.json", "config")
def _(tmp, fx):
    return seed_manifest_edit(tmp, "config-num", lambda m: [{**m[0], "Config": 42}])


@case("config-json-a-list", CONFIG, "object")
def _(tmp, fx):
    return seed_with(tmp, "config-list", lambda es: with_member(es, CONFIG, b"[1, 2, 3]"))


@case("config-history-a-number", "diff_id", outcome="flawed")
def _(tmp, fx):
    cfg = json.loads(next(e.data for e in seed_entries() if e.name == CONFIG))
    cfg["history"] = 7
    cfg["rootfs"]["diff_ids"] = "sha256:nope"
    return seed_with(tmp, "config-types", lambda es: with_member(es, CONFIG, json.dumps(cfg).encode()))


@case("layer-sources-wrong-types", outcome="fine")
def _(tmp, fx):
    # LayerSources is optional and advisory: garbage in it must not stop an otherwise sound archive.
    cfg = json.loads(next(e.data for e in seed_entries() if e.name == CONFIG))
    first = cfg["rootfs"]["diff_ids"][0]
    bad = {first: {"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": "big"}, "sha256:x": "y", "z": [1]}
    return seed_manifest_edit(tmp, "sources", lambda m: [{**m[0], "LayerSources": bad}])


# -- OCI layouts ---------------------------------------------------------------------------------------
def layout(tmp: Path, fx: dict, name: str) -> Path:
    return tk.copy_layout(fx["oci_dir"], tmp / name)


def oci_case(name: str, *needles: str, outcome: str = "fatal"):
    return case(name, *needles, outcome=outcome, uses=("oci_dir",))


@oci_case("oci-unknown-root-media-type", "application/vnd.example.thing+json")
def _(tmp, fx):
    lay = layout(tmp, fx, "unknown-root")
    _, m = tk.root_manifest(lay)
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.example.thing+json", "blobs": m["layers"]}
    tk.replace_root_manifest(lay, doc, mediaType="application/vnd.example.thing+json")
    return lay


@oci_case("oci-unknown-layer-media-type", "application/vnd.example.layer.v9", outcome="flawed")
def _(tmp, fx):
    lay = layout(tmp, fx, "unknown-layer")
    _, m = tk.root_manifest(lay)
    m["layers"][1]["mediaType"] = "application/vnd.example.layer.v9"
    tk.replace_root_manifest(lay, m)
    return lay


@oci_case("oci-index-a-list", "index.json", "index")
def _(tmp, fx):
    lay = layout(tmp, fx, "index-list")
    (lay / "index.json").write_text("[]")
    return lay


@oci_case("oci-manifests-a-string", "index.json", "manifests")
def _(tmp, fx):
    lay = layout(tmp, fx, "manifests-str")
    (lay / "index.json").write_text('{"schemaVersion": 2, "manifests": "sha256:abc"}')
    return lay


@oci_case("oci-size-a-string", "index.json", "size")
def _(tmp, fx):
    lay = layout(tmp, fx, "size-str")
    tk.edit_first_descriptor(lay, size="large")
    return lay


@oci_case("oci-layer-size-null", "size")
def _(tmp, fx):
    lay = layout(tmp, fx, "size-null")
    _, m = tk.root_manifest(lay)
    m["layers"][0]["size"] = None
    tk.replace_root_manifest(lay, m)
    return lay


@oci_case("oci-invalid-digest", "index.json", "digest")
def _(tmp, fx):
    lay = layout(tmp, fx, "bad-digest")
    tk.edit_first_descriptor(lay, digest="sha256:../../../etc/passwd")
    return lay


@oci_case("oci-config-a-string", "config")
def _(tmp, fx):
    lay = layout(tmp, fx, "config-str")
    _, m = tk.root_manifest(lay)
    m["config"] = m["config"]["digest"]
    tk.replace_root_manifest(lay, m)
    return lay


@oci_case("oci-missing-layer-blob", "5d83a799204b", outcome="flawed")
def _(tmp, fx):
    lay = layout(tmp, fx, "missing-layer")
    _, m = tk.root_manifest(lay)
    tk.blob_path(lay, m["layers"][0]["digest"]).unlink()
    return lay


@oci_case("oci-missing-config-blob", "433b870cc1fb", "missing")
def _(tmp, fx):
    lay = layout(tmp, fx, "missing-config")
    _, m = tk.root_manifest(lay)
    tk.blob_path(lay, m["config"]["digest"]).unlink()
    return lay


@oci_case("oci-layer-symlink-escapes", "5d83a799204b", "outside")
def _(tmp, fx):
    lay = layout(tmp, fx, "sym-escape")
    _, m = tk.root_manifest(lay)
    secret = tmp / "secret-outside-layout"
    secret.write_bytes(b"not yours")
    blob = tk.blob_path(lay, m["layers"][0]["digest"])
    blob.unlink()
    blob.symlink_to(secret)
    return lay


@oci_case("oci-config-symlink-escapes", "433b870cc1fb", "outside")
def _(tmp, fx):
    lay = layout(tmp, fx, "cfg-escape")
    _, m = tk.root_manifest(lay)
    blob = tk.blob_path(lay, m["config"]["digest"])
    blob.unlink()
    blob.symlink_to("/etc/passwd")
    return lay


@oci_case("oci-index-json-symlink-escapes", "index.json", "outside")
def _(tmp, fx):
    lay = layout(tmp, fx, "index-escape")
    (lay / "index.json").unlink()
    (lay / "index.json").symlink_to("../../../../../../etc/hostname")
    return lay


@oci_case("oci-blob-is-folder", "433b870cc1fb", "regular file")
def _(tmp, fx):
    lay = layout(tmp, fx, "blob-dir")
    _, m = tk.root_manifest(lay)
    blob = tk.blob_path(lay, m["config"]["digest"])
    blob.unlink()
    blob.mkdir()
    return lay


@oci_case("oci-legit-symlink-blob", outcome="fine")
def _(tmp, fx):
    # A blob stored once and linked inside the layout is fine.
    lay = layout(tmp, fx, "sym-inside")
    _, m = tk.root_manifest(lay)
    blob = tk.blob_path(lay, m["layers"][2]["digest"])
    (lay / "store").mkdir()
    blob.rename(lay / "store" / "big")
    blob.symlink_to("../../store/big")
    return lay


@oci_case("oci-index-cycle", "nest")
def _(tmp, fx):
    # An index whose child descriptor names the index's own (claimed) digest: the bytes cannot hash to it,
    # but a reader that trusts names would recurse forever.
    lay = layout(tmp, fx, "cycle")
    fake = "sha256:" + "ab" * 32
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": fake, "size": 1}],
    }
    tk.blob_path(lay, fake).write_bytes(tk.compact(doc))
    tk.edit_first_descriptor(lay, mediaType=doc["mediaType"], digest=fake)
    return lay


@oci_case("oci-index-fanout-bomb", "manifests", "limit", "REGTUI_MAX_MANIFESTS")
def _(tmp, fx):
    # Eight nested indexes, each listing the next one 40 times: 40**8 paths if followed naively.
    lay = layout(tmp, fx, "fanout")
    desc, _m = tk.root_manifest(lay)
    child = {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]}
    for _level in range(8):
        doc = tk.compact(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [child] * 40}
        )
        child = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": tk.put_blob(lay, doc),
            "size": len(doc),
        }
    tk.edit_first_descriptor(lay, **child)
    return lay


@oci_case("oci-archive-dotdot-blob", "..")
def _(tmp, fx):
    lay = layout(tmp, fx, "for-tar")
    entries = [tk.file(p.relative_to(lay).as_posix(), p.read_bytes()) for p in sorted(lay.rglob("*")) if p.is_file()]
    entries.append(tk.file("blobs/sha256/../../../../escape", b"x"))
    return tk.write_tar(tmp / "oci-dotdot.tar", entries)


@oci_case("oci-archive-blob-symlink-out", "5d83a799204b", "outside")
def _(tmp, fx):
    lay = layout(tmp, fx, "for-tar2")
    _, m = tk.root_manifest(lay)
    layer = "blobs/" + m["layers"][0]["digest"].replace(":", "/")
    entries = [
        tk.file(p.relative_to(lay).as_posix(), p.read_bytes())
        for p in sorted(lay.rglob("*"))
        if p.is_file() and p.relative_to(lay).as_posix() != layer
    ]
    entries.append(tk.sym(layer, "/proc/self/environ"))
    return tk.write_tar(tmp / "oci-symout.tar", entries)


# -- running -------------------------------------------------------------------------------------------
def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_cli(args: list[str], sandbox: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env.update(
        HOME=str(sandbox / "home"),
        XDG_CACHE_HOME=str(sandbox / "cache"),
        TMPDIR=str(sandbox / "tmp"),
        NO_COLOR="1",
        TERM="dumb",
    )
    return subprocess.run(
        [sys.executable, "-m", "regtui", *args],
        cwd=sandbox / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def sandbox(tmp_path) -> Path:
    for d in ("home", "cache", "tmp", "cwd"):
        (tmp_path / d).mkdir()
    return tmp_path


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_archive(name, sandbox, request):
    c = CASES[name]
    fx = {f: request.getfixturevalue(f) for f in c.uses}
    build = sandbox / "corpus"
    build.mkdir()
    archive = c.build(build, fx)
    before = listing(build)

    # The domain refuses fatal cases with an ArchiveError and nothing else.
    if c.outcome == "fatal":
        with pytest.raises(ArchiveError) as err:
            open_archive(str(archive))
        assert "\n" not in err.value.line()
    else:
        open_archive(str(archive))

    commands = {cmd: [cmd, str(archive)] for cmd in c.commands}
    # serve must refuse it up front too (a sound archive would serve until stopped)
    if c.outcome == "fatal" and "verify" in c.commands:
        commands["serve"] = ["serve", str(archive), "--port", str(free_port())]
    results = {cmd: run_cli(args, sandbox) for cmd, args in commands.items()}
    for cmd, r in results.items():
        out = r.stdout + r.stderr
        assert "Traceback" not in out, f"{cmd} {name}: traceback\n{out}"
        assert "Error:" not in r.stderr or "regtui: error" in r.stderr, f"{cmd} {name}: click usage error {r.stderr}"
        if c.outcome == "fine":
            assert r.returncode == 0, f"{cmd} {name} should work:\n{out}"
            continue
        if c.outcome == "flawed" and cmd == "inspect":
            continue  # inspect may show a flawed archive with warnings; verify must fail
        assert r.returncode != 0, f"{cmd} {name} exited 0:\n{out}"
        text = (r.stderr if c.outcome == "fatal" else out).lower()
        for needle in c.needles:
            assert needle.lower() in text, f"{cmd} {name}: {needle!r} not in\n{out}"
        if c.outcome == "fatal":
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("regtui: error: "), (
                f"{cmd} {name}: not one line:\n{r.stderr}"
            )

    # Nothing written except the cache: not the cwd, HOME, TMPDIR, nor beside the archive.
    for d in ("home", "tmp", "cwd"):
        assert listing(sandbox / d) == set(), f"{name}: wrote into {d}: {listing(sandbox / d)}"
    assert listing(build) == before, f"{name}: wrote beside the archive"
