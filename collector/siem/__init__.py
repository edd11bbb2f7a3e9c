"""SIEM integration: stored events as Suricata EVE JSON to a rotated file, syslog (RFC 5424 over TCP/TLS),
NATS JetStream, and a webhook for high-severity alerts (docs/siem.md).

`setup_siem(app, config)` attaches a `SiemHub` to a collector app; ingest calls `publish_batch(app, batch)`
for every newly stored batch.
"""

from __future__ import annotations

from collector.siem.hub import SIEM, SiemConfig, SiemConfigError, SiemHub, build_sinks, publish_batch, setup_siem

__all__ = ["SIEM", "SiemConfig", "SiemConfigError", "SiemHub", "build_sinks", "publish_batch", "setup_siem"]
