"""HTTPS: the collector serves TLS with the configured certificate (self-signed for 127.0.0.1 here)."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import aiohttp

from collector.app import run_collector
from tests.collector.certs import self_signed

from .conftest import config_for


async def test_serves_https_with_the_configured_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = dataclasses.replace(config_for(str(tmp_path / "c.db")), tls_cert=str(cert), tls_key=str(key))
    async with run_collector(config) as running:
        assert running.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{running.url}/healthz", ssl=trusted) as resp:
                assert resp.status == 200
            # A client that does not trust the certificate is refused at the handshake.
            try:
                async with session.get(f"{running.url}/healthz", ssl=ssl.create_default_context()):
                    raise AssertionError("untrusted certificate accepted")
            except aiohttp.ClientConnectorCertificateError:
                pass
