"""Helpers for the TUI tests: wait for a condition while the app runs, read widgets as plain text."""

from __future__ import annotations

import io
import shutil
import time

from rich.console import Console


def flip_byte_in_layer(src, dst) -> str:
    """Copy an archive and corrupt one byte in the middle of its largest layer; returns that layer's digest."""
    from regtui.oci import open_archive

    shutil.copy(src, dst)
    archive = open_archive(str(dst))
    layer = max(archive.images()[0].layers, key=lambda l: l.descriptor.size)
    pos = layer.location.offset + layer.location.size // 2
    with open(dst, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0xFF]))
    return layer.digest


async def until(pilot, condition, timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def text_of(widget) -> str:
    """What a Static (or anything with `content`) shows, as plain text."""
    console = Console(width=250, record=True, file=io.StringIO(), color_system=None)
    content = getattr(widget, "content", None)
    console.print(content if content is not None else widget.render())
    return console.export_text()


def table_rows(table) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: a fixed clock for stable pictures


def publish_demo_traffic(bus, image, port: int = 5000) -> None:
    """What a skopeo pull and a containerd pull of `image` look like on the event bus, at fixed times."""
    from regtui.registry.events import (
        PullProgress,
        RequestFinished,
        RequestProgress,
        RequestStarted,
        ServerState,
    )

    bus.publish(ServerState("starting"))
    bus.publish(ServerState("serving", url=f"http://127.0.0.1:{port}"))
    skopeo, ctr = "skopeo/1.9.3", "containerd/1.6.20"
    m = image.manifests[0]
    reqs = [
        ("127.0.0.1:40110", "GET", "/v2/", 200, 2, skopeo, None),
        ("127.0.0.1:40110", "GET", "/v2/registry/manifests/2.8.1", 200, m.size, skopeo, None),
        (
            "127.0.0.1:40110",
            "GET",
            f"/v2/registry/blobs/{image.config.descriptor.digest}",
            200,
            image.config.descriptor.size,
            skopeo,
            None,
        ),
    ]
    reqs += [
        ("127.0.0.1:40110", "GET", f"/v2/registry/blobs/{l.digest}", 200, l.descriptor.size, skopeo, None)
        for l in image.layers
    ]
    reqs += [
        ("10.0.0.7:51234", "HEAD", "/v2/registry/manifests/2.8.2", 404, 0, ctr, "MANIFEST_UNKNOWN"),
        ("10.0.0.7:51236", "HEAD", "/v2/registry/manifests/2.8.1", 200, 0, ctr, None),
        ("10.0.0.7:51236", "GET", f"/v2/registry/manifests/{m.digest}", 200, m.size, ctr, None),
    ]
    total = sum(l.descriptor.size for l in image.layers) + image.config.descriptor.size
    n = len(image.layers) + 1
    for i, (client, method, path, status, size, ua, code) in enumerate(reqs):
        t = T0 + i * 0.25
        kind = "manifest" if "/manifests/" in path else "blob" if "/blobs/" in path else "base"
        ref = path.rsplit("/", 1)[-1] if kind != "base" else None
        bus.publish(RequestStarted(i + 1, t, client, method, path, "registry", ref, kind, ua))
        bus.publish(RequestFinished(i + 1, t + 0.01 * (i + 1), status, size, 0.01 * (i + 1), code))
        if i == 1:  # skopeo's pull starts with its manifest; its blobs follow
            bus.publish(
                PullProgress(
                    "p1", "127.0.0.1", skopeo, "registry", "2.8.1", m.digest, n, 0, total, 0, T0 + 0.25, T0 + 0.3, False
                )
            )
        if status == 404:  # containerd asked for a tag the archive does not have: that pull failed
            bus.publish(
                PullProgress(
                    "p0",
                    "10.0.0.7",
                    ctr,
                    "registry",
                    "2.8.2",
                    "",
                    0,
                    0,
                    0,
                    0,
                    t,
                    t,
                    True,
                    "404 MANIFEST_UNKNOWN: no manifest 2.8.2 in repository 'registry'",
                )
            )
        if method == "GET" and path.endswith(m.digest):  # containerd's, after resolving the tag
            bus.publish(
                PullProgress("p2", "10.0.0.7", ctr, "registry", "2.8.1", m.digest, n, 0, total, 0, t, t + 0.05, False)
            )
    bus.publish(
        PullProgress(
            "p1", "127.0.0.1", skopeo, "registry", "2.8.1", m.digest, n, n, total, total, T0 + 0.25, T0 + 2.0, True
        )
    )
    big = max(image.layers, key=lambda l: l.descriptor.size)
    rid = len(reqs) + 1
    bus.publish(
        RequestStarted(
            rid,
            T0 + 4,
            "10.0.0.7:51240",
            "GET",
            f"/v2/registry/blobs/{big.digest}",
            "registry",
            big.digest,
            "blob",
            ctr,
        )
    )
    bus.publish(RequestProgress(rid, big.descriptor.size // 3, big.descriptor.size))
    bus.publish(
        PullProgress(
            "p2", "10.0.0.7", ctr, "registry", "2.8.1", m.digest, n, 2, total, total // 3, T0 + 2.5, T0 + 5.0, False
        )
    )
