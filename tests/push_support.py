"""Real parts for the push tests: the Debian docker-registry (plain, htpasswd, TLS, token auth) started on
loopback, a test CA, a bearer-token server, and a TCP proxy that cuts connections after N bytes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import ipaddress
import json
import os
import secrets
import socket
import ssl
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx

from tests.registry_harness import stop_process
from tests.support import free_port, require_tool


# -- certificates ---------------------------------------------------------------------------------------


@dataclass
class TestCA:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_ca(folder: Path, name: str = "regtui test CA") -> TestCA:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it (EC P-256, one day)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    out = TestCA(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    out.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    return out


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    import bcrypt

    lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5, prefix=b'2a')).decode()}"
             for u, p in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the registry ---------------------------------------------------------------------------------------


class Registry:
    """docker-registry on 127.0.0.1 with its storage and log in `folder`; stop() ends it by PID."""

    def __init__(self, folder: Path, *, port: int | None = None, htpasswd: Path | None = None,
                 tls: TestCA | None = None, token: dict | None = None):
        self.folder = folder
        self.port = port or free_port()
        self.tls = tls
        self.storage = folder / "storage"
        self.log = folder / "registry.log"
        self.config = folder / "config.yml"
        http = {"addr": f"127.0.0.1:{self.port}", "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if tls:
            http["tls"] = {"certificate": str(tls.cert_pem), "key": str(tls.key_pem)}
        cfg: dict = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            "http": http,
        }
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

    def start(self) -> Registry:
        exe = require_tool("docker-registry")
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([exe, "serve", str(self.config)], stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        verify = ssl.create_default_context(cafile=str(self.tls.ca_pem)) if self.tls else False
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

    def requests(self, method: str, needle: str = "") -> list[str]:
        """Access-log lines of `method` requests whose path contains `needle`."""
        return [l for l in self.log.read_text(errors="replace").splitlines() if f'"{method} ' in l and needle in l]


# -- skopeo ---------------------------------------------------------------------------------------------


def skopeo(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    exe = require_tool("skopeo")
    return subprocess.run([exe, *args], capture_output=True, timeout=timeout, check=True)


def pull_and_rehash(ref: str, dest: Path, *, tls_args: list[str], all_images: bool = False) -> bytes:
    """skopeo copy docker://ref to a dir: folder (manifests kept byte for byte), re-hash every blob there;
    returns the top manifest's bytes."""
    args = ["copy", "-q", *tls_args, *(["--all"] if all_images else []), f"docker://{ref}", f"dir:{dest}"]
    skopeo(*args)
    blobs = [p for p in dest.iterdir() if len(p.name) == 64]
    assert blobs, f"skopeo copied no blobs from {ref}"
    for p in blobs:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        assert h.hexdigest() == p.name, f"blob {p.name} pulled from {ref} hashes to {h.hexdigest()}"
    return (dest / "manifest.json").read_bytes()


# -- a TCP proxy that cuts ------------------------------------------------------------------------------


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the registry and counts client->server bytes; when `cut_after` is set,
    drops every connection once that many bytes went upstream (once; later connections pass)."""

    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.sent = 0
        self.cut_after: int | None = None
        self.cuts = 0
        self.conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self, cut_after: int | None = None) -> None:
        with self.lock:
            self.sent = 0
            self.cut_after = cut_after

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    with self.lock:
                        self.sent += len(data)
                        cut = self.cut_after is not None and self.sent >= self.cut_after
                    if cut:
                        self._cut()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _cut(self) -> None:
        with self.lock:
            self.cut_after = None
            self.cuts += 1
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                # linger 0: a reset, like a dropped network; shutdown first wakes the pump blocked in recv,
                # which would otherwise keep the socket open past close().
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self._cut()


# -- a bearer-token server ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A docker token service (distribution's `auth: token`) on loopback: ES256 JWTs with an x5c chain of a
    self-signed certificate the registry trusts; grants what is asked when the basic credentials match."""

    def __init__(self, folder: Path, users: dict[str, str], service: str = "regtui-test",
                 issuer: str = "regtui-test-issuer"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users, self.service, self.issuer = users, service, issuer
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "regtui token signer")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
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
                server.requests.append({"user": user, "scopes": scopes})
                access = []
                for s in scopes:
                    typ, _, rest = s.partition(":")
                    name, _, actions = rest.rpartition(":")
                    if typ == "repository" and user:  # anonymous users get a token with no access
                        access.append({"type": typ, "name": name, "actions": actions.split(",")})
                self._send(200, {"token": server.token(user or "", access), "expires_in": 300})

            def do_POST(self):  # OAuth2 refresh-token grant (docker's `identitytoken`)
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                refresh = form.get("refresh_token", [""])[0]
                user = server.refresh_tokens.get(refresh)
                server.requests.append({"user": user, "grant": form.get("grant_type", [""])[0],
                                        "scopes": form.get("scope", [""])[0].split()})
                if user is None:
                    return self._send(401, {"details": "bad refresh token"})
                access = []
                for s in form.get("scope", [""])[0].split():
                    typ, _, rest = s.partition(":")
                    name, _, actions = rest.rpartition(":")
                    access.append({"type": typ, "name": name, "actions": actions.split(",")})
                self._send(200, {"access_token": server.token(user, access), "expires_in": 300})

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
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                "rootcertbundle": str(self.bundle)}

    def token(self, subject: str, access: list[dict]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- archives -------------------------------------------------------------------------------------------


def add_big_layer(layout: Path, size: int) -> str:
    """Append an uncompressed layer holding `size` random bytes to the one image of an OCI layout (config
    diff_ids, history, manifest and index.json updated); returns the layer digest."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    manifest = json.loads((blobs / desc["digest"].split(":")[1]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        info.mtime = 0
        tf.addfile(info, io.BytesIO(os.urandom(size)))
    layer = buf.getvalue()

    def put(data: bytes) -> tuple[str, int]:
        hexd = hashlib.sha256(data).hexdigest()
        (blobs / hexd).write_bytes(data)
        return f"sha256:{hexd}", len(data)

    layer_digest, layer_size = put(layer)
    config["rootfs"]["diff_ids"].append(layer_digest)
    config.setdefault("history", []).append({"created": "2024-01-01T00:00:00Z", "created_by": "big layer"})
    cfg_digest, cfg_size = put(json.dumps(config, separators=(",", ":")).encode())
    manifest["config"].update(digest=cfg_digest, size=cfg_size)
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                               "size": layer_size})
    m_digest, m_size = put(json.dumps(manifest, separators=(",", ":")).encode())
    desc.update(digest=m_digest, size=m_size)
    (layout / "index.json").write_text(json.dumps(index))
    return layer_digest
