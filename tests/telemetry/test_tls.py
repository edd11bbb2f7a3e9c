"""TLS: the shipper verifies the collector against the configured CA and presents its client certificate.

A throw-away CA, server certificate (IP SAN 127.0.0.1) and client certificate are made with `cryptography`;
the receiver is a real aiohttp server on loopback requiring client certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from telemetry.config import ShipperConfig
from telemetry.errors import ConfigError
from telemetry.schema import ObservationEvent
from telemetry.shipper import Shipper, make_ssl_context
from telemetry.signing import AgentCredential, generate_secret

from .receiver import Receiver

SECRET = generate_secret()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key) -> None:
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca_key, server_key, client_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    ca = _cert("Veille test CA", ca_key, "Veille test CA", ca_key, ca=True)
    other_ca = _cert("Other CA", other_key, "Other CA", other_key, ca=True)
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "other_ca", "server", "client")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["other_ca"].write_bytes(other_ca.public_bytes(serialization.Encoding.PEM))
    _write(paths["server"], _cert("collector", server_key, "Veille test CA", ca_key, server=True), server_key)
    _write(paths["client"], _cert("gw-tls", client_key, "Veille test CA", ca_key), client_key)
    return paths


async def ship_one(tmp_path: Path, receiver: Receiver, **kw) -> tuple[int, int, bool]:
    cfg = ShipperConfig(
        url=receiver.url,
        agent_id="gw-tls",
        secret=SECRET,
        site="s",
        batch_max_age=0.05,
        spool_dir=tmp_path / "spool",
        backoff_initial=0.05,
        backoff_max=0.1,
        **kw,
    )
    async with Shipper(cfg) as shipper:
        shipper.submit(ObservationEvent(ts=1.0, kind="test", fields={"i": 1}))
        await shipper.drain()
        stats = shipper.stats()
    return stats.events_acked, stats.send_errors, any("TLS" in a for a in stats.alarms)


async def test_mutual_tls(tmp_path: Path, pki: dict[str, Path]) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    server_ctx.load_cert_chain(str(pki["server"]))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    receiver = Receiver(secrets={"gw-tls": AgentCredential(SECRET.encode())}, ssl_context=server_ctx)
    await receiver.start()
    try:
        ok = await ship_one(tmp_path / "ok", receiver, ca_file=pki["ca"], client_cert=pki["client"])
        wrong_ca = await ship_one(tmp_path / "ca", receiver, ca_file=pki["other_ca"], client_cert=pki["client"])
        no_cert = await ship_one(tmp_path / "nc", receiver, ca_file=pki["ca"])
    finally:
        await receiver.stop()
    print(f"TLS: right CA + client cert {ok}, wrong CA {wrong_ca}, no client cert {no_cert} (acked, errors, alarm)")
    assert ok == (1, 0, False)
    assert wrong_ca[0] == 0 and wrong_ca[1] >= 1 and wrong_ca[2]  # the TLS alarm is raised
    assert no_cert[0] == 0 and no_cert[1] >= 1  # TLS 1.3: the server refuses after the handshake
    assert len(receiver.order) == 1


def test_unreadable_tls_files_name_the_problem(tmp_path: Path) -> None:
    cfg = ShipperConfig(url="https://127.0.0.1:1", agent_id="a", secret="x", site="s", ca_file=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="collector TLS files"):
        make_ssl_context(cfg)
