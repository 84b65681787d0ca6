"""The registry client on its own, as `watch` and the like use it: TLS with a private CA and HTTP Basic against a
real docker-registry; the token scopes it derives from request paths."""

from __future__ import annotations

import httpx
import pytest

from regtui.remote import Credentials, RegistryClient, RemoteError, Unreachable
from regtui.remote.auth import SCOPES, scopes_for
from tests.helpers.distribution import DistributionRegistry, make_ca, write_htpasswd
from tests.helpers.support import free_port


def test_scopes_follow_the_path():
    def scopes(url: str, actions: str = "pull", **ext) -> tuple[str, ...]:
        return scopes_for(httpx.Request("GET", url, extensions=ext), actions)

    assert scopes("http://r/v2/") == ()
    assert scopes("http://r/v2/team/app/manifests/1.0") == ("repository:team/app:pull",)
    assert scopes("http://r/v2/a/blobs/uploads/?mount=sha256:x&from=b/c", "pull,push") == (
        "repository:a:pull,push",
        "repository:b/c:pull",
    )
    assert scopes("http://r/v2/x/tags/list") == ("repository:x:pull",)
    assert scopes("http://r/elsewhere/upload", **{SCOPES: ("repository:y:push",)}) == ("repository:y:push",)


async def test_tls_with_a_private_ca_and_basic_auth(tmp_path):
    ca = make_ca(tmp_path / "pki")
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"watcher": "s3cret"})
    no_config = lambda host: None  # docker's config.json must not be consulted here
    with DistributionRegistry(tmp_path / "reg", tls=ca, htpasswd=htpasswd) as reg:
        # Untrusted certificate: one precise line that says what to do.
        with pytest.raises(Unreachable, match="TLS certificate verification failed") as e:
            async with RegistryClient(reg.host, scheme="https", lookup=no_config):
                pass
        assert "--ca" in e.value.line()
        # Trusted, but anonymous: the ping goes through, the first real request says a login is needed.
        async with RegistryClient(reg.host, ca=str(ca.ca_pem), lookup=no_config) as client:
            assert str(client.base) == f"https://{reg.host}"
            with pytest.raises(RemoteError, match="requires a login"):
                await client.request("GET", "/v2/_catalog", None, "listing")
        # Wrong password: refused when connecting, before any real request.
        with pytest.raises(RemoteError, match="authentication failed as 'watcher'"):
            async with RegistryClient(reg.host, ca=str(ca.ca_pem), credentials=Credentials("watcher", "nope")):
                pass
        async with RegistryClient(reg.host, ca=str(ca.ca_pem), credentials=Credentials("watcher", "s3cret")) as c:
            r = await c.request("GET", "/v2/_catalog", None, "listing")
            assert r.status_code == 200 and r.json() == {"repositories": []}
            r = await c.request("GET", "/v2/nothing/manifests/1.0", "nothing", "reading a manifest")
            assert r.status_code == 404


async def test_refused_and_plain_http_to_tls(tmp_path):
    port = free_port()
    with pytest.raises(Unreachable, match="connection refused") as e:
        async with RegistryClient(f"127.0.0.1:{port}"):
            pass
    assert e.value.where == f"127.0.0.1:{port}" and "is the registry running" in e.value.line()
    ca = make_ca(tmp_path / "pki")
    with (
        DistributionRegistry(tmp_path / "reg", tls=ca) as reg,
        pytest.raises(RemoteError, match="speaks HTTPS, not plain HTTP"),
    ):  # loopback: plain HTTP first
        async with RegistryClient(reg.host):
            pass
