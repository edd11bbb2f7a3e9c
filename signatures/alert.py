"""The `Alert` value: one rule, IOC or LAN-detection hit, with the fields SOC tools expect.

Alerts are immutable and carry text addresses already (they are rare next to packets, so the
conversion is paid only on a hit). `to_event()` gives the `alert` event of the replay contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Alert:
    """A signature or detection hit. `severity` is the priority: 1 (high) .. 4 (low)."""

    ts: float
    sid: int
    gid: int = 1
    rev: int = 1
    msg: str = ""
    classtype: str | None = None
    severity: int = 3
    src: str | None = None
    sport: int | None = None
    dst: str | None = None
    dport: int | None = None
    proto: str | None = None
    community_id: str | None = None
    app: Mapping[str, Any] = field(default_factory=dict)
    rule_file: str | None = None
    src_mac: str | None = None
    action: str = "alert"

    def to_event(self) -> dict[str, Any]:
        """The `alert` event (JSON-ready dict) of the replay contract."""
        return {
            "type": "alert",
            "ts": self.ts,
            "sid": self.sid,
            "gid": self.gid,
            "rev": self.rev,
            "msg": self.msg,
            "classtype": self.classtype,
            "severity": self.severity,
            "src": self.src,
            "sport": self.sport,
            "dst": self.dst,
            "dport": self.dport,
            "proto": self.proto,
            "community_id": self.community_id,
            "app": dict(self.app),
            "rule_file": self.rule_file,
            "src_mac": self.src_mac,
            "action": self.action,
        }
