"""`--tls-self-signed`: a throwaway certificate for the bound host, and fingerprints to pin it by."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _san_for(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    hosts = [host] if host not in ("0.0.0.0", "::", "") else []
    hosts += ["localhost", "127.0.0.1", "::1"]
    for h in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


def self_signed(host: str, folder: str, days: int = 30) -> tuple[str, str, str]:
    """Write cert.pem and key.pem (0600) into `folder`; return (certfile, keyfile, SHA-256 fingerprint)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, host or "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "regtui self-signed"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_san_for(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile = os.path.join(folder, "cert.pem")
    keyfile = os.path.join(folder, "key.pem")
    with open(certfile, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return certfile, keyfile, fingerprint(cert.public_bytes(serialization.Encoding.DER))


def fingerprint(der: bytes) -> str:
    """SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it."""
    import hashlib

    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i : i + 2] for i in range(0, len(h), 2))


def check_pair(certfile: str, keyfile: str) -> str:
    """The certificate's fingerprint; raises ValueError with a clear message if the pair cannot be used."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except FileNotFoundError as e:
        raise ValueError(f"{e.filename}: no such file") from None
    except ssl.SSLError as e:
        raise ValueError(f"{certfile} / {keyfile}: not a matching PEM certificate and key ({e.reason})") from None
    except OSError as e:
        raise ValueError(f"cannot read {e.filename or certfile}: {e.strerror}") from None
    with open(certfile, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))
