"""One client for real registries, used by `push`, `diff` and whatever else talks to one (e.g. `watch`).

    from regtui.remote import RegistryClient, Credentials, RemoteError

    async with RegistryClient("registry.local:5000", ca="ca.pem",
                              credentials=Credentials("alice", "secret")) as client:
        resp = await client.request("GET", "/v2/team/app/manifests/1.0", "team/app", "reading the manifest",
                                    headers={"Accept": "application/vnd.oci.image.index.v1+json"})

- `RegistryClient(host, *, scheme, ca, insecure, credentials, lookup, actions, retries, backoff, timeout,
  on_retry, transport)` (client.py): `connect()` (or `async with`) pings `/v2/` to pick the scheme (loopback:
  plain HTTP; else HTTPS, plain HTTP only with `insecure`) and reports refused connections, unknown hosts and
  TLS failures as one-line `Unreachable` errors. `request()` retries broken connections, 408, 429 and 5xx with
  backoff and Retry-After; `send()` is one attempt. Both turn a final 401/403 into a `RemoteError` that says
  whether a login is missing, the credentials are wrong or access is denied.
- Authentication (auth.py) is the `httpx.Auth` flow `RegistryAuth`: HTTP Basic, bearer tokens from the
  registry's token service (anonymous, basic credentials, or a refresh token), cached per scope.
- Credentials (credentials.py): given, or looked up on the first 401 in docker's config.json
  (`$DOCKER_CONFIG`, `~/.docker`): `auths` entries, `identitytoken`, `credHelpers` and `credsStore` helpers.
- Errors (errors.py): `RemoteError(what, where=, hint=)` with `.line()`; `registry_errors(resp)` reads a
  distribution error body.

References (`host/repo:tag@digest`) are parsed by the domain: `regtui.oci.refs.parse_remote`.
"""

from regtui.remote.client import RegistryClient
from regtui.remote.credentials import Credentials, docker_credentials
from regtui.remote.errors import RemoteError, Unreachable

__all__ = ["Credentials", "RegistryClient", "RemoteError", "Unreachable", "docker_credentials"]
