"""The development certificate of the gateway's TLS port: self-signed, for localhost and the
loopback addresses (and the gateway's host when it is another name), made once into the run
directory and made again only when it is about to expire."""

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=7)
SUBJECT = "Orderflow development gateway"


def dev_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(certificate, key) in `directory`, the key readable by its owner only."""
    cert_file, key_file = directory / "gateway-dev.crt", directory / "gateway-dev.key"
    if cert_file.exists() and key_file.exists() and not _expiring(cert_file):
        return cert_file, key_file
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SUBJECT)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key_file.unlink(missing_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                     x509.IPAddress(ipaddress.ip_address("::1"))]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        extra: x509.GeneralName = x509.DNSName(host)
    else:
        if address.is_unspecified:  # 0.0.0.0: every address; the loopback names above stay
            return names
        extra = x509.IPAddress(address)
    return names if extra in names else [*names, extra]


def _expiring(cert_file: Path) -> bool:
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return certificate.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) < RENEW_BEFORE
