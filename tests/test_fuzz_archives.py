"""Archive fuzzing (issue 7, hostile input): random mutations of real archives must open to a model or raise
ArchiveError — never another exception — in bounded time and memory; whatever opens must also inspect and
verify without raising. Plus decompression bombs during diff_id checks.

The bases are a small image built here from scratch as a crane tarball, and skopeo's docker-archive (with its
symlinks) and oci-archive conversions of it, so that each example costs milliseconds.
Set REGTUI_FUZZ_EXAMPLES to run more (or fewer) examples per base, REGTUI_FUZZ_RANDOM=1 for new ones.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import resource
import subprocess
import tarfile
import threading
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from regtui.cli.inspect import render_inspect
from regtui.cli.verify import print_report, report_dict
from regtui.oci import open_archive
from regtui.oci.errors import ArchiveError
from regtui.oci.inspect import inspect_dict
from regtui.oci.verify import verify_archive
from tests.helpers import tarkit as tk
from tests.helpers.support import require_tool

EXAMPLES = int(os.environ.get("REGTUI_FUZZ_EXAMPLES", "300"))
RANDOM = os.environ.get("REGTUI_FUZZ_RANDOM") == "1"  # new examples each run instead of the fixed sequence
PER_EXAMPLE_SECONDS = 10  # generous on a shared 2-core machine; a hang or blow-up is far beyond it
COUNTS: dict[str, dict[str, int]] = {}


# -- a small real image, from scratch ------------------------------------------------------------------
def mini_crane(path: Path, layers: list[bytes] | None = None, compressed: list[bytes] | None = None) -> Path:
    if layers is None:
        layers = [
            tk.layer_tar({"etc/hello": b"hello\n"}),
            tk.layer_tar({"bin/tool": tk.pseudo_random(20_000, b"tool")}),
        ]
    return tk.crane_tarball(path, layers, compressed, tag="fuzz/mini:1")


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, list[tk.Entry]]:
    d = tmp_path_factory.mktemp("fuzz-bases")
    crane = mini_crane(d / "crane.tar")
    skopeo = require_tool("skopeo")
    for transport, out in (("docker-archive", d / "docker.tar"), ("oci-archive", d / "oci.tar")):
        subprocess.run(
            [skopeo, "copy", "-q", f"docker-archive:{crane}", f"{transport}:{out}:fuzz/mini:1"], check=True, timeout=120
        )
    out = {name: tk.read_entries(d / f"{name}.tar") for name in ("crane", "docker", "oci")}
    out["docker25"] = docker25(out["oci"])
    tk.write_tar(d / "docker25.tar", out["docker25"])
    for name in out:
        archive = open_archive(str(d / f"{name}.tar"))
        assert verify_archive(archive).ok, f"base {name} must be sound before we mutate it"
    assert archive.format == "docker-save"
    assert any(e.kind == "sym" for e in out["docker"]), "skopeo's docker-archive should hold symlinks"
    return out


def docker25(oci: list[tk.Entry]) -> list[tk.Entry]:
    """Docker 25+ `docker save` layout: the OCI layout plus a manifest.json pointing into blobs/."""
    by_name = {e.name: e for e in oci}
    index = json.loads(by_name["index.json"].data)
    desc = index["manifests"][0]
    desc["annotations"] = {
        "io.containerd.image.name": "docker.io/fuzz/mini:1",
        "org.opencontainers.image.ref.name": "1",
    }
    manifest = json.loads(by_name["blobs/sha256/" + desc["digest"].split(":")[1]].data)
    entry = {
        "Config": "blobs/sha256/" + manifest["config"]["digest"].split(":")[1],
        "RepoTags": ["fuzz/mini:1"],
        "Layers": ["blobs/sha256/" + l["digest"].split(":")[1] for l in manifest["layers"]],
    }
    return [tk.file("index.json", json.dumps(index)) if e.name == "index.json" else e for e in oci] + [
        tk.file("manifest.json", json.dumps([entry]))
    ]


# -- mutations -----------------------------------------------------------------------------------------
HOSTILE_NAMES = [
    "../escape",
    "/etc/passwd",
    "a/../../b",
    "manifest.json",
    "index.json",
    "oci-layout",
    "blobs/sha256/../../x",
    "",
    ".",
    "./manifest.json",
    "repositories",
    "x" * 300,
    "dir/",
    "é/ü",
]
LINK_TARGETS = ["/etc/passwd", "../../../etc/shadow", "..", ".", "missing", "/proc/self/environ", "a/../../x"]


def json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
        max_leaves=12,
    )


JSON_KEYS = [
    "Config",
    "Layers",
    "RepoTags",
    "LayerSources",
    "manifests",
    "layers",
    "config",
    "digest",
    "size",
    "mediaType",
    "rootfs",
    "diff_ids",
    "history",
    "annotations",
    "platform",
    "urls",
    "schemaVersion",
    "org.opencontainers.image.ref.name",
]


def _slots(node, out: list) -> list:
    """Every (container, key) in a JSON document, so each field is as likely to be hit as any other."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append((node, k))
        _slots(v, out)
    return out


def mutate_json(data: bytes, draw) -> bytes:
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    slots = _slots(doc, [])
    if not slots or draw(st.integers(0, 20)) == 0:
        return json.dumps(draw(json_values())).encode()  # the whole document replaced
    node, key = draw(st.sampled_from(slots))
    op = draw(st.sampled_from(["set", "delete", "retype", "retype", "dup", "add"]))
    if op == "delete":
        node.pop(key)
    elif op == "retype":
        v = node[key]
        node[key] = draw(st.sampled_from([str(v), [v], {"x": v}, None, True, 1 << 65, -1, 1.5, "", "sha256:zz"]))
    elif op == "dup" and isinstance(node, list):
        node.extend([node[key]] * draw(st.integers(1, 50)))
    elif op == "add" and isinstance(node, dict):
        node[draw(st.sampled_from(JSON_KEYS))] = draw(json_values())
    else:
        node[key] = draw(json_values())
    return json.dumps(doc).encode()


def mutate_entries(entries: list[tk.Entry], draw) -> list[tk.Entry]:
    es = list(entries)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(
            st.sampled_from(
                [
                    "json",
                    "json",
                    "json",
                    "drop",
                    "rename",
                    "dup",
                    "link",
                    "link-chain",
                    "truncate-data",
                    "flip-data",
                    "swap",
                ]
            )
        )
        docs = [k for k, x in enumerate(es) if x.kind == "file" and x.data[:1] in (b"{", b"[")]
        i = draw(st.sampled_from(docs)) if op == "json" and docs else draw(st.integers(0, len(es) - 1))
        e = es[i]
        if op == "json" and e.kind == "file":
            es[i] = tk.file(e.name, mutate_json(e.data, draw))
        elif op == "drop":
            es.pop(i)
        elif op == "rename":
            es[i] = e.renamed(draw(st.sampled_from(HOSTILE_NAMES + [x.name for x in es])))
        elif op == "dup":
            es.insert(draw(st.integers(0, len(es))), draw(st.sampled_from(es)).renamed(e.name))
        elif op == "link":
            target = draw(st.sampled_from(LINK_TARGETS + [x.name for x in es]))
            es[i] = (tk.sym if draw(st.booleans()) else tk.hard)(e.name, target)
        elif op == "link-chain":
            n = draw(st.integers(1, 40))
            chain = [tk.sym(f"l{k}", f"l{k + 1}") for k in range(n)] + [
                tk.sym(f"l{n}", draw(st.sampled_from(["l0", e.name, "/etc/passwd", "gone"])))
            ]
            es[i] = tk.sym(e.name, "l0") if draw(st.booleans()) else e
            es.extend(chain)
        elif op == "truncate-data" and e.kind == "file":
            es[i] = tk.file(e.name, e.data[: draw(st.integers(0, max(0, len(e.data) - 1)))])
        elif op == "flip-data" and e.kind == "file" and e.data:
            pos = draw(st.integers(0, len(e.data) - 1))
            b = bytearray(e.data)
            b[pos] ^= 1 << draw(st.integers(0, 7))
            es[i] = tk.file(e.name, bytes(b))
        elif op == "swap" and len(es) > 1:
            j = draw(st.integers(0, len(es) - 1))
            es[i], es[j] = es[i].renamed(es[j].name), es[j].renamed(es[i].name)
    return es


def mutate_raw(data: bytes, offsets: list[int], draw) -> bytes:
    """Byte-level damage: bit flips aimed at tar headers or anywhere, and truncation."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip-header", "flip-any", "truncate", "zero-block"]))
        if not b:
            break
        if op == "flip-header" and offsets:
            pos = min(len(b) - 1, draw(st.sampled_from(offsets)) + draw(st.integers(0, 511)))
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "flip-any":
            pos = draw(st.integers(0, len(b) - 1))
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del b[draw(st.integers(0, len(b) - 1)) :]
        elif op == "zero-block" and len(b) >= 512:
            pos = draw(st.integers(0, len(b) // 512 - 1)) * 512
            b[pos : pos + 512] = bytes(512)
    return bytes(b)


def header_offsets(data: bytes) -> list[int]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return [i.offset for i in tf]


# -- the property ----------------------------------------------------------------------------------------
def check_archive(path: Path, tally: dict[str, int]) -> None:
    started = time.monotonic()
    try:
        archive = open_archive(str(path))
    except ArchiveError as e:
        line = e.line()
        assert line and "\n" not in line, f"error message is not one line: {line!r}"
        tally["refused"] += 1
    else:
        inspected = inspect_dict(archive)
        json.dumps(inspected)  # inspect --json must be able to print it
        console = Console(file=io.StringIO(), width=100)
        render_inspect(archive, console)  # what `regtui inspect` prints
        report = verify_archive(archive)
        print_report(report, console)
        json.dumps(report_dict(report))
        tally["verified ok" if report.ok else "verify found problems"] += 1
        for p in report.problems:
            assert p.line(), "a problem without a message"
    elapsed = time.monotonic() - started
    assert elapsed < PER_EXAMPLE_SECONDS, f"took {elapsed:.1f}s"
    tally["examples"] += 1


def run_fuzz(name: str, tmp: Path, body) -> None:
    tally = {"examples": 0, "refused": 0, "verified ok": 0, "verify found problems": 0}
    COUNTS[name] = tally
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    body(tally)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown < 512, f"peak memory grew by {grown:.0f} MiB while fuzzing"
    assert tally["examples"] >= min(EXAMPLES, 20), tally
    assert tally["refused"] > 0, f"no mutation was refused: the fuzzer does not reach the error paths {tally}"
    print(f"\nfuzz {name}: {tally}")


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not RANDOM,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("base", ["crane", "docker", "oci", "docker25"])
def test_fuzz_member_mutations(base, bases, tmp_path, capsys):
    """Renames, duplicates, drops, link tricks, JSON edits and data damage, member by member."""
    path = tmp_path / f"{base}.tar"

    def body(tally):
        @FUZZ_SETTINGS
        @given(st.data())
        def one(data):
            tk.write_tar(path, mutate_entries(bases[base], data.draw))
            check_archive(path, tally)

        one()

    with capsys.disabled():
        run_fuzz(f"members/{base}", tmp_path, body)
    assert sorted(os.listdir(tmp_path)) == [path.name], "something wrote beside the archive"


@pytest.mark.parametrize("base", ["crane", "docker", "oci", "docker25"])
def test_fuzz_raw_bytes(base, bases, tmp_path, capsys):
    """Bit flips in tar headers and anywhere, zeroed blocks, truncation."""
    clean = tk.tar_bytes(bases[base])
    offsets = header_offsets(clean)
    path = tmp_path / f"{base}.tar"

    def body(tally):
        @FUZZ_SETTINGS
        @given(st.data())
        def one(data):
            path.write_bytes(mutate_raw(clean, offsets, data.draw))
            check_archive(path, tally)

        one()

    with capsys.disabled():
        run_fuzz(f"raw/{base}", tmp_path, body)


def test_fuzz_layout_folders(bases, tmp_path, capsys):
    """The OCI base as a folder, links made real on disk: they may point anywhere, reads must stay inside."""
    outside = tmp_path / "outside-secret"
    outside.write_bytes(b"secret outside the layout")
    targets = LINK_TARGETS + [str(outside), "../outside-secret", "../../outside-secret"]

    def body(tally):
        @FUZZ_SETTINGS
        @given(st.data())
        def one(data):
            tally["tried"] = tally.get("tried", 0) + 1
            root = tmp_path / f"layout-{tally['tried']}"
            entries = mutate_entries(bases["oci"], data.draw)
            for e in entries:
                rel = tk.Path(e.name.lstrip("/")) if e.name else None
                if rel is None or ".." in rel.parts or not rel.parts:
                    continue  # a folder cannot hold these names; the tar tests cover them
                p = root / rel
                try:
                    p.parent.mkdir(parents=True, exist_ok=True)
                    if p.is_symlink() or p.exists():
                        continue
                    if e.kind == "file":
                        p.write_bytes(e.data)
                    elif e.kind == "dir":
                        p.mkdir()
                    else:
                        p.symlink_to(data.draw(st.sampled_from(targets + [e.link])))
                except (OSError, ValueError):
                    continue  # the mutation does not fit a file system (a file where a folder must be)
            root.mkdir(exist_ok=True)
            check_archive(root, tally)
            assert outside.read_bytes() == b"secret outside the layout"

        one()

    with capsys.disabled():
        run_fuzz("layout-folder", tmp_path, body)


# -- decompression bombs ---------------------------------------------------------------------------------
def gzip_of_zeros(total: int, segment: int = 64 << 20) -> bytes:
    """A gzip stream of `total` zero bytes (a multiple of `segment`), built without compressing them all:
    after a full flush, deflate output depends only on the input, so one segment's output repeats."""
    zeros = bytes(segment)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    seg = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    n = total // segment
    crc = 0
    for _ in range(n):  # the trailer must be right, or the stream is merely corrupt rather than a bomb
        crc = zlib.crc32(zeros, crc)
    trailer = crc.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little")
    body = head + seg * (n - 1) + tail[:-8]
    assert (
        gzip.decompress(
            head + tail[:-8] + zlib.crc32(zeros).to_bytes(4, "little") + (segment & 0xFFFFFFFF).to_bytes(4, "little")
        )
        == zeros
    )
    return body + trailer


def zstd_of_zeros(total: int) -> bytes:
    import zstandard

    # zstd encodes runs as RLE blocks: a few bytes per 128 KiB, ratios far beyond any real layer.
    return zstandard.ZstdCompressor(level=19).compress(bytes(64 << 20)) * (total // (64 << 20))


def bomb_archive(path: Path, compressed: bytes, suffix: str = ".tar.gz") -> Path:
    # The config claims some small diff_id; the bomb is what the layer member really holds.
    layer_plain = tk.layer_tar({"etc/hello": b"hello\n"})
    p = mini_crane(path, layers=[layer_plain], compressed=[compressed])
    if suffix != ".tar.gz":
        entries = tk.read_entries(p)
        name = tk.sha256(compressed).split(":")[1]
        entries = [e.renamed(name + suffix) if e.name == name + ".tar.gz" else e for e in entries]
        m = json.loads(next(e.data for e in entries if e.name == "manifest.json"))
        m[0]["Layers"] = [name + suffix]
        entries = [
            tk.file("manifest.json", json.dumps(m).encode()) if e.name == "manifest.json" else e for e in entries
        ]
        tk.write_tar(p, entries)
    return p


def _verify_bounded(path: Path, limit: float):
    archive = open_archive(str(path))
    started = time.monotonic()
    report = verify_archive(archive)
    elapsed = time.monotonic() - started
    assert elapsed < limit, f"verify took {elapsed:.1f}s"
    return report, elapsed


def test_zstd_bomb_stopped(tmp_path):
    bomb = zstd_of_zeros(8 << 30)  # 8 GiB of zeros in well under 1 MiB
    assert len(bomb) < 1 << 20
    report, elapsed = _verify_bounded(bomb_archive(tmp_path / "zbomb.tar", bomb, ".tar.zst"), 60)
    assert not report.ok
    lines = [p.line() for p in report.errors()]
    assert any("bomb" in l for l in lines), lines
    print(f"\nzstd bomb: {len(bomb)} bytes claiming 8 GiB stopped in {elapsed:.1f}s: {lines}")


def test_zstd_frame_asking_for_a_2_gib_window_is_refused(tmp_path):
    """A frame may declare any window size; the decoder must not allocate it for a hostile layer."""
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31, enable_ldm=True, write_content_size=False)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as w:
        w.write(tk.pseudo_random(1 << 20, b"window"))
    frame = out.getvalue()
    assert zstandard.get_frame_parameters(frame).window_size == 2 << 30
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report, _ = _verify_bounded(bomb_archive(tmp_path / "window.tar", frame, ".tar.zst"), 30)
    assert any("memory" in p.line() for p in report.errors()), [p.line() for p in report.errors()]
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) < 512 * 1024  # KiB


def test_gzip_bomb_stopped(tmp_path):
    bomb = gzip_of_zeros(4 << 30)  # 4 GiB of zeros in ~4 MiB: deflate's ~1030:1 ceiling
    assert len(bomb) < 5 << 20
    report, elapsed = _verify_bounded(bomb_archive(tmp_path / "gbomb.tar", bomb), 60)
    assert not report.ok
    lines = [p.line() for p in report.errors()]
    assert any("bomb" in l for l in lines), lines
    print(f"\ngzip bomb: {len(bomb)} bytes inflating to 4 GiB stopped in {elapsed:.1f}s: {lines}")


def test_gzip_bomb_cancel_is_prompt(tmp_path):
    """Cancelling verification mid-bomb returns quickly instead of inflating what is already queued."""
    from regtui.oci.hashing import Cancelled

    archive = open_archive(str(bomb_archive(tmp_path / "gbomb.tar", gzip_of_zeros(2 << 30))))
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        verify_archive(archive, cancel=cancel)
    timer.cancel()
    assert time.monotonic() - started < 5


# -- the archive changes between open and verify -------------------------------------------------------
@pytest.mark.parametrize("change", ["truncate", "overwrite", "remove"])
def test_archive_changing_after_open_is_a_problem_not_a_crash(bases, tmp_path, change):
    path = tk.write_tar(tmp_path / "crane.tar", bases["crane"])
    archive = open_archive(str(path))
    layer = max(archive.images()[0].layers, key=lambda l: l.descriptor.size)
    if change == "truncate":
        os.truncate(path, layer.location.offset + layer.location.size // 2)
    elif change == "overwrite":
        with open(path, "r+b") as f:
            f.seek(layer.location.offset + 100)
            f.write(b"\0" * 64)
    else:
        path.unlink()
    if change == "remove":
        # Nothing to read at all: an OSError naming the file, which `regtui verify` and the TUI both report.
        with pytest.raises((ArchiveError, OSError)) as err:
            verify_archive(archive)
        assert str(path) in str(err.value)
        return
    report = verify_archive(archive)
    assert not report.ok
    assert any(layer.digest in p.subject or layer.digest in p.line() for p in report.errors()), [
        p.line() for p in report.problems
    ]
