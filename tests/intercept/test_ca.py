from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tollhouse.intercept.ca import CA_NAME, ensure_ca, write_bundle


def test_ca_is_created_once_with_a_private_key_only_we_can_read(tmp_path: Path) -> None:
    files = ensure_ca(tmp_path / "ca")
    assert files.created
    assert files.key_and_cert.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ca").stat().st_mode & 0o777 == 0o700
    pem = files.key_and_cert.read_bytes()
    load_pem_private_key(pem, password=None)  # mitmproxy's layout: key, then certificate
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert b"PRIVATE KEY" not in files.cert.read_bytes()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert CA_NAME in cert.subject.rfc4514_string()
    again = ensure_ca(tmp_path / "ca")
    assert not again.created and again.cert.read_bytes() == files.cert.read_bytes()


def test_a_loose_key_file_is_tightened_when_rewritten(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    directory.mkdir()
    (directory / "mitmproxy-ca.pem").write_text("stale")
    (directory / "mitmproxy-ca.pem").chmod(0o644)
    files = ensure_ca(directory)  # no public cert: recreated
    assert files.created and files.key_and_cert.stat().st_mode & 0o777 == 0o600


def test_bundle_is_system_roots_plus_our_ca(tmp_path: Path) -> None:
    files = ensure_ca(tmp_path / "ca")
    bundle = write_bundle(files).read_bytes()
    assert bundle.endswith(files.cert.read_bytes())
    assert bundle.count(b"BEGIN CERTIFICATE") > 1  # the system's roots come first
