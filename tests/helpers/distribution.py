"""The Debian `docker-registry` (distribution 2.8) for tests, and what it needs around it: a test CA for TLS,
an htpasswd file, and a bearer-token service for `auth: token`. Everything listens on 127.0.0.1 only, on a
free port; the registry is stopped by its PID."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlparse

import httpx

from regtui.oci import mediatypes as mt
from tests.helpers.support import free_port, require_tool, stop_process

# -- certificates and passwords -------------------------------------------------------------------------


@dataclass
class TestCA:
    __test__ = False  # a fixture, not a test class

    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_ca(folder: Path, name: str = "regtui test CA") -> TestCA:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it (EC P-256, one day)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    out = TestCA(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    out.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return out


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    import bcrypt

    # $2a$: distribution's bcrypt reads it; few rounds keep the tests fast.
    lines = [
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5, prefix=b'2a')).decode()}" for u, p in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the registry ---------------------------------------------------------------------------------------


class DistributionRegistry:
    """`docker-registry serve` on 127.0.0.1:<free port>; config and access log in `folder`, blobs in `storage`
    (default folder/storage; two registries may share one, e.g. a read-only restart or a token-guarded twin).
    Use as a context manager, or start() / stop() (by PID)."""

    def __init__(
        self,
        folder: Path,
        *,
        port: int | None = None,
        storage: Path | None = None,
        htpasswd: Path | None = None,
        tls: TestCA | None = None,
        token: dict | None = None,
        readonly: bool = False,
    ):
        self.folder = folder
        self.port = port or free_port()
        self.tls = tls
        self.storage = storage or folder / "storage"
        self.log = folder / "registry.log"
        self.config = folder / "config.yml"
        # The Debian package's default header. No upload purger: tests never leave week-old uploads, and the
        # resumption tests need theirs kept.
        http: dict = {"addr": f"127.0.0.1:{self.port}", "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if tls:
            http["tls"] = {"certificate": str(tls.cert_pem), "key": str(tls.key_pem)}
        cfg: dict = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}, "readonly": {"enabled": readonly}},
            },
            "http": http,
        }
        assert not (htpasswd and token), "distribution takes one auth method"
        if htpasswd:
            cfg["auth"] = {"htpasswd": {"realm": "regtui-test", "path": str(htpasswd)}}
        if token:
            cfg["auth"] = {"token": token}
        folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps(cfg))  # YAML is a superset of JSON
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's `verify` for this registry: its test CA, or no TLS at all."""
        return ssl.create_default_context(cafile=str(self.tls.ca_pem)) if self.tls else False

    def start(self) -> DistributionRegistry:
        exe = require_tool("docker-registry")
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [exe, "serve", str(self.config)], stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        verify = self.verify
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v2/", verify=verify, timeout=2).status_code in (200, 401):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer /v2/: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def requests(self, method: str, needle: str = "") -> list[str]:
        """Access-log lines of `method` requests whose path contains `needle`."""
        return [l for l in self.log.read_text(errors="replace").splitlines() if f'"{method} ' in l and needle in l]

    # Plain API calls, for a registry without auth: put exact bytes in, read exact bytes back.

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if httpx.head(f"{self.url}/v2/{repo}/blobs/{digest}", verify=self.verify).status_code == 200:
            return digest
        r = httpx.post(f"{self.url}/v2/{repo}/blobs/uploads/", verify=self.verify)
        assert r.status_code == 202, r.text
        loc = r.headers["Location"]
        url = loc if loc.startswith("http") else self.url + loc
        url += ("&" if "?" in url else "?") + f"digest={digest}"  # keep distribution's _state parameter
        r = httpx.put(url, content=data, headers={"Content-Type": "application/octet-stream"}, verify=self.verify)
        assert r.status_code == 201, r.text
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        r = httpx.put(
            f"{self.url}/v2/{repo}/manifests/{ref}",
            content=data,
            headers={"Content-Type": media_type},
            verify=self.verify,
        )
        assert r.status_code == 201, r.text
        return r.headers["Docker-Content-Digest"]

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        r = httpx.get(
            f"{self.url}/v2/{repo}/manifests/{ref}",
            verify=self.verify,
            headers={"Accept": ", ".join(sorted(mt.ALL_MANIFESTS))},
        )
        assert r.status_code == 200, r.text
        return r.content, r.headers["Docker-Content-Digest"]

    def get_blob(self, repo: str, digest: str) -> bytes:
        r = httpx.get(f"{self.url}/v2/{repo}/blobs/{digest}", follow_redirects=True, verify=self.verify)
        assert r.status_code == 200, r.text
        return r.content


# -- a bearer-token service -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Docker token service (distribution's `auth: token`, as Docker Hub runs one) on loopback: ES256 JWTs
    with an x5c chain of a self-signed certificate the registry trusts. Users with matching basic credentials
    get the repository actions they ask for, anonymous callers only those in `anonymous` (e.g. ("pull",));
    an OAuth2 refresh-token grant (docker's `identitytoken`) works for tokens put in `refresh_tokens`.
    Every request is recorded in `requests` (user, service, scopes; denied or grant when relevant)."""

    def __init__(
        self,
        folder: Path,
        users: dict[str, str] | None = None,
        service: str = "regtui-test",
        issuer: str = "regtui-test-issuer",
        anonymous: tuple[str, ...] = (),
    ):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users, self.service, self.issuer, self.anonymous = users or {}, service, issuer, anonymous
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "regtui token signer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        self.bundle = folder / "token-signer.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.requests: list[dict] = []
        self.refresh_tokens: dict[str, str] = {}  # identity token -> user
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_GET(self):
                q = parse_qs(urlparse(self.path).query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(u) != p:
                        server.requests.append({"user": u, "denied": True})
                        return self._send(401, {"details": "bad credentials"})
                    user = u
                scopes = q.get("scope", [])
                server.requests.append({"user": user, "service": q.get("service", [""])[0], "scopes": scopes})
                self._send(200, {"token": server.token(user or "", server.grant(user, scopes)), "expires_in": 300})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                refresh = form.get("refresh_token", [""])[0]
                user = server.refresh_tokens.get(refresh)
                scopes = form.get("scope", [""])[0].split()
                server.requests.append({"user": user, "grant": form.get("grant_type", [""])[0], "scopes": scopes})
                if user is None:
                    return self._send(401, {"details": "bad refresh token"})
                self._send(200, {"access_token": server.token(user, server.grant(user, scopes)), "expires_in": 300})

            def _send(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def registry_config(self) -> dict:
        """The `auth: token` section for DistributionRegistry(token=...)."""
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer, "rootcertbundle": str(self.bundle)}

    def grant(self, user: str | None, scopes: list[str]) -> list[dict]:
        access = []
        for s in scopes:
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",") if user or a in self.anonymous]
            if typ == "repository" and allowed:
                access.append({"type": typ, "name": name, "actions": allowed})
        return access

    def token(self, subject: str, access: list[dict]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
