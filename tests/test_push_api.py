"""The push API the TUI will drive: plain event objects, bounded parallelism, retries on 429/5xx (injected in
front of a real docker-registry), and the registry's digests checked against ours."""

from __future__ import annotations

import httpx
import pytest

from regtui.oci import open_archive
from regtui.push.client import PushClient
from regtui.push.errors import PushError
from regtui.push.events import BlobDone, BlobProgress, BlobStarted, Finished, ManifestDone, Retry
from regtui.push.names import parse_target
from regtui.push.plan import build_plan
from regtui.push.run import run_push
from tests.helpers.distribution import DistributionRegistry


@pytest.fixture
def registry(tmp_path):
    with DistributionRegistry(tmp_path / "registry") as reg:
        yield reg


class FlakyTransport(httpx.AsyncBaseTransport):
    """The real transport, except that the first blob uploads (PUT with ?digest=) and pings are answered with
    the given statuses (429 / 503)."""

    def __init__(self, faults: list[int], ping_faults: list[int] = ()):
        self.real = httpx.AsyncHTTPTransport()
        self.faults = list(faults)
        self.ping_faults = list(ping_faults)
        self.injected: list[tuple[int, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/" and self.ping_faults:
            return httpx.Response(self.ping_faults.pop(0), headers={"Retry-After": "0"})
        if request.method == "PUT" and "digest" in request.url.params and self.faults:
            status = self.faults.pop(0)
            self.injected.append((status, request.url.params["digest"]))
            await request.aread()  # consume the body like a real server would
            return httpx.Response(
                status,
                headers={"Retry-After": "0"},
                json={
                    "errors": [{"code": "TOOMANYREQUESTS" if status == 429 else "UNAVAILABLE", "message": "injected"}]
                },
            )
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_events_parallelism_and_retries(registry, seed_tar):
    archive = open_archive(str(seed_tar))
    plan = build_plan(archive, parse_target(f"{registry.host}/api"))
    events: list[object] = []
    active: set[str] = set()
    peak = 0

    def on_event(e: object) -> None:
        nonlocal peak
        events.append(e)
        if isinstance(e, BlobStarted):
            active.add(e.digest)
            peak = max(peak, len(active))
        elif isinstance(e, BlobDone):
            active.discard(e.digest)

    flaky = FlakyTransport([429, 503], ping_faults=[503])
    async with PushClient(plan.target, on_event=on_event, transport=flaky, backoff=0.01) as client:
        summary = await run_push(plan, client, jobs=2, on_event=on_event)

    assert 1 <= peak <= 2
    assert [s for s, _ in flaky.injected] == [429, 503]
    retries = [e for e in events if isinstance(e, Retry)]
    assert len(retries) == 3 and all(r.delay < 0.1 for r in retries)  # Retry-After: 0 honoured
    assert retries[0].what == f"contacting {registry.host}" and retries[0].reason.endswith("503")
    done = {e.digest: e for e in events if isinstance(e, BlobDone)}
    assert set(done) == set(plan.repos[0].blobs) and all(e.action == "uploaded" for e in done.values())
    for d, item in plan.repos[0].blobs.items():
        last = [e.done for e in events if isinstance(e, BlobProgress) and e.digest == d][-1]
        assert last == item.size
    manifests = [e for e in events if isinstance(e, ManifestDone)]
    assert [m.ref for m in manifests] == [archive.roots[0].manifests[0].digest, "2.8.1"]
    assert isinstance(events[-1], Finished) and events[-1].summary is summary
    assert summary.bytes_total == plan.total_bytes()
    # Retries re-send whole small blobs: what was sent is the plan plus the injected failures' bodies.
    retried = sum(plan.repos[0].blobs[d].size for _, d in flaky.injected)
    assert summary.bytes_sent == plan.total_bytes() + retried


async def test_registry_digest_mismatch_is_an_error(registry, seed_tar):
    """A registry that stores a manifest under another digest must not pass silently."""

    class Rewriting(httpx.AsyncBaseTransport):
        def __init__(self):
            self.real = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request):
            resp = await self.real.handle_async_request(request)
            if request.method == "PUT" and "/manifests/" in request.url.path:
                await resp.aread()
                headers = dict(resp.headers)
                headers["docker-content-digest"] = "sha256:" + "0" * 64
                return httpx.Response(resp.status_code, headers=headers, content=resp.content)
            return resp

    archive = open_archive(str(seed_tar))
    plan = build_plan(archive, parse_target(registry.host))
    ours = archive.roots[0].manifests[0].digest  # whole digests in errors
    async with PushClient(plan.target, transport=Rewriting()) as client:
        with pytest.raises(PushError, match=f"stored manifest {ours} as sha256:{'0' * 64} "):
            await run_push(plan, client)
