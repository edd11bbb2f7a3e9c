"""Replay/live event dicts (docs in README) to the wire schema's structs (telemetry.schema).

The pipeline speaks the replay contract; the wire has its own compact, versioned schema. This is
the one place that maps between them, so neither side bends to the other.
"""

from __future__ import annotations

from typing import Any

from telemetry.schema import Event, to_event

# Replay lines that describe the run, not the network: never shipped.
NOT_SHIPPED = frozenset({"stats"})


def to_wire(event: dict[str, Any]) -> Event | None:
    """The wire struct for one event dict, or None for lines that are not shipped."""
    kind = event.get("type")
    if kind in NOT_SHIPPED:
        return None
    if kind == "device":
        event = _device(event)
    elif kind == "alert":
        event = _alert(event)
    return to_event(event)


def _device(e: dict[str, Any]) -> dict[str, Any]:
    d = dict(e)
    os_ = d.get("os")
    if not isinstance(os_, dict) or not os_.get("family"):
        d["os"] = None
    else:
        d["os"] = {"family": os_["family"], "version": os_.get("version")}
    d["evidence"] = [
        {k: v for k, v in ev.items() if k in ("source", "value", "suggests", "weight", "first_seen", "last_seen")}
        | {"suggests": {k: str(v) for k, v in (ev.get("suggests") or {}).items() if v is not None}}
        for ev in d.get("evidence") or []
    ]
    d["names"] = [n if isinstance(n, dict) else {"name": str(n)} for n in d.get("names") or []]
    fps: dict[str, Any] = {}
    for k, v in (d.get("fingerprints") or {}).items():
        if v is None:
            continue
        fps[k] = [str(x) for x in v] if isinstance(v, list | tuple) else str(v)
    d["fingerprints"] = fps
    return d


def _alert(e: dict[str, Any]) -> dict[str, Any]:
    d = dict(e)
    app = d.pop("app", None)
    if isinstance(app, dict):
        d["app_fields"] = {k: v for k, v in app.items() if v is not None}
    elif isinstance(app, str):
        d["app_proto"] = app
    return d
