"""tollhouse's own certificate authority: created once, private key mode 0600.

The interceptor signs a certificate for each LLM host it decrypts with this
CA, so a client must trust it: ``tollhouse run`` hands a tool a bundle of the
system's roots plus this CA, or the user trusts it system-wide
(:func:`trust_instructions`). The files are in mitmproxy's layout
(``mitmproxy-ca.pem`` = key + certificate), so mitmproxy loads them as its own.

>>> files = ensure_ca(Path("~/.tollhouse/ca").expanduser())
>>> oct(files.key_and_cert.stat().st_mode & 0o777)
'0o600'
"""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

#: mitmproxy's file names (its CertStore reads ``<basename>-ca.pem`` from its confdir).
KEY_AND_CERT = "mitmproxy-ca.pem"
PUBLIC_CERT = "tollhouse-ca.pem"
BUNDLE = "bundle.pem"
CA_NAME = "tollhouse local interception CA"
VALID_DAYS = 3650


@dataclass(frozen=True, slots=True)
class CAFiles:
    directory: Path
    created: bool

    @property
    def key_and_cert(self) -> Path:
        """The private key and certificate: mode 0600, for the interceptor only."""
        return self.directory / KEY_AND_CERT

    @property
    def cert(self) -> Path:
        """The certificate alone (public): what clients and trust stores need."""
        return self.directory / PUBLIC_CERT

    @property
    def bundle(self) -> Path:
        """System roots plus this CA, for ``SSL_CERT_FILE`` and friends."""
        return self.directory / BUNDLE


def ensure_ca(directory: Path) -> CAFiles:
    """Create the CA in ``directory`` unless it is there already."""
    files = CAFiles(directory, created=False)
    if files.key_and_cert.exists() and files.cert.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_pem, cert_pem = generate_ca()
    _write(files.key_and_cert, key_pem + cert_pem, 0o600)
    _write(files.cert, cert_pem, 0o644)
    return CAFiles(directory, created=True)


def generate_ca(now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """A fresh self-signed CA: (private key PEM, certificate PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = now or datetime.datetime.now(datetime.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tollhouse"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def write_bundle(files: CAFiles) -> Path:
    """(Re)write the bundle: the system's trust roots, then tollhouse's CA."""
    roots = system_roots()
    text = roots.read_bytes() if roots is not None else b""
    if text and not text.endswith(b"\n"):
        text += b"\n"
    _write(files.bundle, text + files.cert.read_bytes(), 0o644)
    return files.bundle


def system_roots() -> Path | None:
    """The system's CA file (as OpenSSL finds it), else certifi's, else None."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi
    except ImportError:
        return None
    return Path(certifi.where())


def trust_instructions(cert: Path) -> str:
    """How to trust the CA system-wide (only needed for tools not started by ``tollhouse run``)."""
    return f"""\
To trust it system-wide (tools you don't start with `tollhouse run`):
  Debian/Ubuntu:  sudo cp {cert} /usr/local/share/ca-certificates/tollhouse.crt \\
                    && sudo update-ca-certificates
  Fedora/RHEL:    sudo trust anchor --store {cert}
                  (or copy it to /etc/pki/ca-trust/source/anchors/ and run update-ca-trust)
  macOS:          sudo security add-trusted-cert -d -r trustRoot \\
                    -k /Library/Keychains/System.keychain {cert}
  Node.js tools:  NODE_EXTRA_CA_CERTS={cert} (Node ignores the system store)
Its private key never leaves this machine; delete the directory to revoke it."""


def _write(path: Path, data: bytes, mode: int) -> None:
    # A fresh file created with its final mode (no moment where the key is readable),
    # renamed into place: a tool starting meanwhile never reads half a bundle.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)  # in case the umask took bits away
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
