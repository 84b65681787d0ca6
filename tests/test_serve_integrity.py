"""Issue 11: integrity and abuse of `regtui serve`, against the real command in a subprocess on loopback.

Each test here failed on the code before its fix: the archive rewritten in place with its mtime restored, the
500s, log injection, password checks stalling pulls, orphaned workers, descriptor exhaustion.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.test_load_faults import (  # noqa: F401 (fixtures)
    Served,
    _assert_no_wrong_byte,
    _stream_then,
    big_archive,
    blob_url,
    copy_of,
    serve,
    sha,
)


# -- 1: the fingerprint sees a rewrite whose mtime was put back -----------------------------------------------
def _rewrite_keeping_mtime(archive: Path, write) -> None:
    """`cp other.tar a.tar; touch -r ref a.tar`: other bytes, same inode and size, the old mtime put back."""
    st = os.stat(archive)
    with open(archive, "r+b") as f:
        write(f)
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = os.stat(archive)
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def _other_bytes(big: dict):
    def write(f):
        f.seek(big["offset"])
        f.write(bytes(b ^ 0xFF for b in big["bytes"][:1 << 20]))
    return write


def _truncate_and_extend(big: dict):
    def write(f):
        size = os.fstat(f.fileno()).st_size
        f.truncate(big["offset"] + 4096)
        f.truncate(size)  # the same size again, zeros where the blob was
    return write


@pytest.mark.parametrize("how", ["other-bytes", "truncate-extend"])
def test_rewrite_with_mtime_restored_is_refused_when_idle(big_archive, serve, tmp_path, how):  # noqa: F811
    archive = copy_of(big_archive, tmp_path)
    s = serve(archive)
    url = blob_url(s, big_archive)
    assert httpx.head(url, timeout=10).status_code == 200
    _rewrite_keeping_mtime(archive, _other_bytes(big_archive) if how == "other-bytes"
                           else _truncate_and_extend(big_archive))
    for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-99"}),
                            ("GET", {"Range": "bytes=-100"})):
        r = httpx.request(method, url, headers=headers, timeout=10)
        if r.status_code in (200, 206) and method == "GET":
            want = big_archive["bytes"][:100] if "=0-" in headers.get("Range", "") else \
                big_archive["bytes"][-100:] if headers else big_archive["bytes"]
            assert sha(r.content) == sha(want), f"{method} {headers}: {r.status_code} with bytes that are not the blob's"
        assert r.status_code == 503, (method, headers, r.status_code)
    err = httpx.get(url, timeout=10).json()["errors"][0]
    assert err["code"] == "UNAVAILABLE" and "modified" in err["detail"], err
    assert httpx.get(f"{s.url}/v2/", timeout=10).status_code == 200


@pytest.mark.parametrize("path", ["pump", "quart"])
def test_rewrite_ahead_of_a_reader_with_mtime_restored(big_archive, serve, tmp_path, path):  # noqa: F811
    """64 KiB written well ahead of a transfer in flight, mtime put back: the transfer fails, no wrong byte.

    `pump`: plain HTTP (the fast path's thread pump); `quart`: with --htpasswd (the streamed body)."""
    archive = copy_of(big_archive, tmp_path)
    args: list[str] = []
    headers = {}
    if path == "quart":
        from tests.distribution import write_htpasswd

        args = ["--htpasswd", str(write_htpasswd(tmp_path / "htpasswd", {"u": "p"}))]
        headers = {"Authorization": "Basic dTpw"}
    s = serve(archive, *args)

    def overwrite(f):
        f.seek(big_archive["offset"] + (20 << 20))
        f.write(os.urandom(64 << 10))

    got, ended = _stream_then(blob_url(s, big_archive), lambda: _rewrite_keeping_mtime(archive, overwrite),
                              headers=headers)
    _assert_no_wrong_byte(big_archive, got, ended)
    assert ended is not None, "a blob whose bytes changed on disk was sent in full"
    assert "stopped sending" in s.out.read_text()
