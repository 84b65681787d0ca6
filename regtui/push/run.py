"""Carry out a plan: blobs in parallel (HEAD, then mount or upload), then manifests by digest, then tags.

Resumable by construction: every blob and manifest is checked with HEAD first, so a second run after an
interruption sends only what the registry does not have.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from regtui.oci.digests import short
from regtui.push.client import PushClient
from regtui.push.errors import PushError
from regtui.push.events import BlobDone, BlobProgress, BlobStarted, Finished, ManifestDone, Note, Summary
from regtui.push.plan import BlobItem, Plan, RepoPlan


async def run_push(
    plan: Plan,
    client: PushClient,
    *,
    jobs: int = 4,
    dry_run: bool = False,
    on_event: Callable[[object], None] | None = None,
) -> Summary:
    emit = on_event or (lambda e: None)
    summary = Summary(dry_run=dry_run)
    started = time.monotonic()
    for n in plan.notes:
        emit(Note(n))
    gate = asyncio.Semaphore(max(1, jobs))

    async def group(digest: str, item: BlobItem, repos: list[RepoPlan]) -> None:
        async with gate:
            await _blob(client, digest, item, repos, dry_run, emit, summary)

    try:
        async with asyncio.TaskGroup() as tg:
            for digest, (item, repos) in plan.blob_groups().items():
                tg.create_task(group(digest, item, repos))
    except BaseExceptionGroup as eg:
        raise _first(eg) from None

    # Children before the indexes that list them (plan order), every repository, then the tags.
    for rp in plan.repos:
        for m in rp.manifests:
            await _manifest(client, rp.repo, m.digest, m, dry_run, emit, summary)
    for rp in plan.repos:
        for tag, m in rp.tags.items():
            await _manifest(client, rp.repo, tag, m, dry_run, emit, summary)
    summary.elapsed = time.monotonic() - started
    emit(Finished(summary))
    return summary


def _first(eg: BaseExceptionGroup) -> BaseException:
    """The error to show from a task group: a PushError if any task raised one."""
    flat: list[BaseException] = []
    stack: list[BaseException] = [eg]
    while stack:
        e = stack.pop()
        if isinstance(e, BaseExceptionGroup):
            stack.extend(e.exceptions)
        else:
            flat.append(e)
    for e in flat:
        if isinstance(e, PushError):
            return e
    return flat[0]


async def _blob(
    client: PushClient, digest: str, item: BlobItem, repos: list[RepoPlan], dry_run: bool, emit, summary: Summary
) -> None:
    have = await asyncio.gather(*(client.blob_exists(rp.repo, digest) for rp in repos))
    source = None
    missing = []
    for rp, h in zip(repos, have, strict=True):
        if h:
            source = source or rp.repo
            summary.present.append(f"{rp.repo}@{digest}")
            emit(BlobDone(rp.repo, digest, item.size, "present"))
        else:
            missing.append(rp)
    for rp in missing:
        if dry_run:
            summary.missing.append(f"{rp.repo}@{digest}")
            summary.bytes_total += item.size if source is None else 0
            emit(BlobDone(rp.repo, digest, item.size, "missing", source=source or ""))
            source = source or rp.repo  # the rest would be mounts
            continue
        session = None
        if source is not None:
            session = await client.mount(rp.repo, digest, source)
            if session is None:
                summary.mounted.append(f"{rp.repo}@{digest}")
                emit(BlobDone(rp.repo, digest, item.size, "mounted", source=source))
                continue
        if item.location is None:
            raise PushError(
                f"blob {short(digest)} ({item.what}) is neither in the archive nor in the registry",
                where=f"{client.target.host}/{rp.repo}",
                hint="the archive is incomplete; push the image from a complete archive",
            )
        emit(BlobStarted(rp.repo, digest, item.size))

        def progress(done: int, repo=rp.repo) -> None:
            emit(BlobProgress(repo, digest, done, item.size))

        sent = await client.upload_blob(rp.repo, digest, item.location, progress, session)
        summary.uploaded.append(f"{rp.repo}@{digest}")
        summary.bytes_sent += sent
        summary.bytes_total += item.size
        emit(BlobDone(rp.repo, digest, item.size, "uploaded", sent=sent))
        source = rp.repo


async def _manifest(client: PushClient, repo: str, ref: str, m, dry_run: bool, emit, summary: Summary) -> None:
    name = f"{repo}@{ref}" if ref.startswith("sha256:") else f"{repo}:{ref}"
    if await client.manifest_digest(repo, ref, m.media_type) == m.digest:
        summary.manifests_present.append(name)
        emit(ManifestDone(repo, ref, m.digest, m.media_type, "present"))
        return
    if dry_run:
        summary.manifests_pushed.append(name)
        emit(ManifestDone(repo, ref, m.digest, m.media_type, "missing"))
        return
    await client.put_manifest(repo, ref, m)
    summary.manifests_pushed.append(name)
    emit(ManifestDone(repo, ref, m.digest, m.media_type, "pushed"))
