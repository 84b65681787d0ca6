"""Verification: every blob's digest and size, config digests, diff_ids, layer order, index descriptors.

Each problem says what was expected, what was found and the likely cause. Blobs are hashed once each (shared
layers too), in a small thread pool; progress is reported in bytes read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from regtui.oci.digests import short
from regtui.oci.formats.common import diff_ids, digest_from_name
from regtui.oci.hashing import HashResult, hash_blob
from regtui.oci.model import Archive, Image, ImageIndex, Location, Problem, Root
from regtui.oci.zarf.verify import check_package, package_files

Progress = Callable[[int, int, str], None]  # (bytes done, bytes total, what is being hashed)


@dataclass
class Check:
    check: str  # "blob", "diff_id", "config", "layers", "index", "archive"
    subject: str
    ok: bool
    detail: str = ""


@dataclass
class VerifyReport:
    path: str
    checks: list[Check] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    uncompressed_sizes: dict[str, int] = field(default_factory=dict)  # layer digest -> bytes
    computed_diff_ids: dict[str, str] = field(default_factory=dict)  # layer digest -> sha256 of its content
    bytes_hashed: int = 0
    seconds: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def status_of(self, digest: str) -> bool | None:
        """True (verified), False (a problem names it) or None (not checked) for a blob digest."""
        if any(digest in p.subject for p in self.errors()):
            return False
        seen = [c for c in self.checks if c.subject == digest]
        return all(c.ok for c in seen) if seen else None

    def bad_blobs(self, digests: Iterable[str]) -> dict[str, str]:
        """Which of these blob digests failed a check, with the first problem found: what a registry must
        not send as if it were that blob (`serve --refuse-corrupt`, the TUI)."""
        out: dict[str, str] = {}
        for digest in digests:
            p = next((p for p in self.errors() if digest in p.subject), None)
            if p is not None:
                out[digest] = f"{p.check}: expected {p.expected}, found {p.found}"
        return out

    def add(self, check: str, subject: str, problem: Problem | None, detail: str = "") -> None:
        self.checks.append(Check(check, subject, problem is None, detail if problem is None else problem.found))
        if problem is not None:
            self.problems.append(problem)


@dataclass
class _Job:
    digest: str
    loc: Location
    compression: str | None
    want_diff_id: bool
    sizes: set[int]  # sizes descriptors claim for it


def _jobs(archive: Archive) -> list[_Job]:
    """One job per distinct blob; layers ask for their diff_id too."""
    jobs: dict[str, _Job] = {}
    for digest, loc in archive.blobs.items():
        jobs[digest] = _Job(digest, loc, None, False, set())
    for img in archive.images():
        cfg = img.config.descriptor
        if cfg.digest in jobs:
            jobs[cfg.digest].sizes.add(cfg.size)
        for layer in img.layers:
            job = jobs.get(layer.digest)
            if job is None:
                continue
            job.sizes.add(layer.descriptor.size)
            if layer.diff_id:
                job.want_diff_id = True
                job.compression = layer.compression
    return list(jobs.values())


def verify_archive(
    archive: Archive, progress: Progress | None = None, cancel: threading.Event | None = None, workers: int = 2
) -> VerifyReport:
    """Check everything; raises hashing.Cancelled when `cancel` is set."""
    started = time.monotonic()
    report = VerifyReport(archive.path)
    report.problems.extend(archive.warnings)
    jobs = _jobs(archive)
    files = package_files(archive) if archive.package is not None else []
    total = sum(j.loc.size for j in jobs) + sum(loc.size for _, loc in files if loc is not None)
    done = 0
    lock = threading.Lock()
    last = [0.0]

    def tick(n: int, label: str) -> None:
        nonlocal done
        with lock:
            done += n
            now = time.monotonic()
            if progress and (now - last[0] > 0.05 or done >= total):
                last[0] = now
                progress(done, total, label)

    def run(job: _Job) -> tuple[_Job, HashResult]:
        label = short(job.digest)
        res = hash_blob(
            job.loc,
            compression=job.compression,
            want_diff_id=job.want_diff_id,
            progress=lambda n: tick(n, label),
            cancel=cancel,
        )
        return job, res

    if progress:
        progress(0, total, "")
    results: dict[str, HashResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="regtui-verify") as pool:
        # Largest first: the pool finishes sooner when the long job starts early.
        for job, res in pool.map(run, sorted(jobs, key=lambda j: -j.loc.size)):
            results[job.digest] = res
            _check_blob(report, job, res)
    report.bytes_hashed = sum(r.size for r in results.values())
    for img in archive.images():
        _check_image(report, img, results)
    for root in archive.roots:
        _check_indexes(report, root)
    if archive.package is not None:
        check_package(archive, report, results, files, lambda n: tick(n, "checksums.txt"), cancel)
        report.bytes_hashed += sum(loc.size for _, loc in files if loc is not None)
    report.seconds = time.monotonic() - started
    return report


def _where(loc: Location) -> str:
    return f" (member {loc.member})" if loc.member else ""


def _check_blob(report: VerifyReport, job: _Job, res: HashResult) -> None:
    where = _where(job.loc)
    if res.size < job.loc.size:
        report.add(
            "blob",
            job.digest,
            Problem(
                "blob",
                job.digest,
                f"{job.loc.size} bytes",
                f"{res.size} bytes",
                f"the file ended early{where}; it was truncated or changed on disk",
            ),
        )
        return
    if res.digest != job.digest:
        report.add(
            "blob",
            job.digest,
            Problem(
                "digest",
                job.digest,
                job.digest,
                res.digest,
                f"the bytes{where} do not match their digest: the blob was corrupted or altered after it was written",
            ),
        )
    else:
        report.add("blob", job.digest, None, f"sha256 ok, {res.size} bytes")
    for claimed in sorted(job.sizes):
        if claimed >= 0 and claimed != job.loc.size:
            report.add(
                "size",
                job.digest,
                Problem(
                    "size",
                    job.digest,
                    f"{claimed} bytes (descriptor)",
                    f"{job.loc.size} bytes{where}",
                    "the descriptor's size is wrong: clients will reject the blob "
                    "(a known Docker 25.0 save bug, or the blob was replaced)",
                ),
            )


def _check_image(report: VerifyReport, img: Image, results: dict[str, HashResult]) -> None:
    name = f"{img.repository}:{img.tags[0]}" if img.tags else f"{img.repository}@{short(img.manifest.digest)}"
    cfg = img.config
    member = cfg.location.member if cfg.location else ""
    claimed = digest_from_name(member) if member else None
    if claimed and claimed != cfg.descriptor.digest:
        report.add(
            "config",
            name,
            Problem(
                "config digest",
                f"{name} config {member}",
                claimed,
                cfg.descriptor.digest,
                "the config's name promises another digest: the config was edited after the archive was written",
            ),
        )
    else:
        report.add("config", name, None, f"config {short(cfg.descriptor.digest)} ok")
    ids = diff_ids(cfg)
    if len(ids) != len(img.layers):
        report.add(
            "layers",
            name,
            Problem(
                "layer count",
                name,
                f"{len(ids)} layers (config rootfs.diff_ids)",
                f"{len(img.layers)} in the manifest",
                "manifest and config disagree: a layer is missing or extra (partial save or hand-edited manifest)",
            ),
        )
    hist = [h for h in img.history if not h.empty_layer]
    if img.history and len(hist) != len(img.layers):
        report.problems.append(
            Problem(
                "history",
                name,
                f"{len(img.layers)} non-empty history entries",
                str(len(hist)),
                "history does not line up with the layers; created_by lines may be shifted",
                "warning",
            )
        )
    for i, layer in enumerate(img.layers):
        res = results.get(layer.digest)
        subject = f"{name} layer {i}"
        if res is None:
            if not layer.descriptor.urls:
                report.add(
                    "blob",
                    layer.digest,
                    Problem(
                        "blob",
                        f"{subject} {layer.digest}",
                        "the layer in the archive",
                        "not present",
                        "the archive is incomplete; pulls of this image will fail",
                    ),
                )
            continue
        if res.uncompressed_size is not None:
            report.uncompressed_sizes[layer.digest] = res.uncompressed_size
        if res.diff_id:
            report.computed_diff_ids[layer.digest] = res.diff_id
        if res.inflate_error:
            report.add(
                "diff_id",
                layer.digest,
                Problem(
                    "decompress",
                    f"{subject} {layer.digest}",
                    f"a valid {layer.compression or 'tar'} stream",
                    res.inflate_error,
                    "the layer is corrupt or hostile; it cannot be unpacked",
                ),
            )
            continue
        if not layer.diff_id or res.diff_id is None:
            continue
        if res.diff_id != layer.diff_id:
            in_order = ids.index(res.diff_id) if res.diff_id in ids else -1
            if in_order >= 0:
                cause = f"the layer matches diff_id {in_order} instead: layers are out of order"
            else:
                cause = (
                    "the uncompressed content differs from what the config promises: a wrong layer, or "
                    "the layer was re-built"
                )
            report.add(
                "diff_id",
                layer.digest,
                Problem("diff_id", f"{subject} {layer.digest}", layer.diff_id, res.diff_id, cause),
            )
        else:
            report.add("diff_id", layer.digest, None, f"diff_id ok, {res.uncompressed_size} bytes uncompressed")


def _check_indexes(report: VerifyReport, root: Root) -> None:
    if not isinstance(root, ImageIndex):
        return
    by_digest = {c.manifests[0].digest: c for c in root.children}
    for i, d in enumerate(root.descriptors):
        child = by_digest.get(d.digest)
        subject = f"{root.repository} index {short(root.manifest.digest)} manifests[{i}]"
        if child is None:
            continue  # a missing child was reported when the archive was opened
        m = child.manifests[0]
        problem = None
        if d.size != m.size:
            problem = Problem(
                "index",
                subject,
                f"{d.size} bytes",
                f"{m.size} bytes",
                "the index descriptor's size does not match the manifest it points to",
            )
        elif d.platform and isinstance(child, Image):
            cfg = child.config.json
            found = f"{cfg.get('os', '')}/{cfg.get('architecture', '')}"
            want = f"{d.platform.os}/{d.platform.architecture}"
            if found != want:
                problem = Problem(
                    "platform",
                    subject,
                    want,
                    found + " (config)",
                    "the index advertises another platform than the image's config: clients will run the wrong binary",
                )
        report.add("index", subject, problem, f"{short(d.digest)} ok")
        _check_indexes(report, child)
