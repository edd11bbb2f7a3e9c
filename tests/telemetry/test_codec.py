"""Schema and codec: round trips, plain msgpack readers, v1 batches, field-path errors, compression caps."""

from __future__ import annotations

import gzip

import msgpack
import msgspec
import pytest
import zstandard

from telemetry.codec import compress, decode_batch, decompress, encode_batch, new_batch
from telemetry.errors import BodyTooLarge, EncodingError, SchemaError, UnsupportedEncoding
from telemetry.schema import (
    SCHEMA_VERSION,
    AlertEvent,
    DeviceEvent,
    DeviceName,
    Evidence,
    FlowEvent,
    HealthEvent,
    ObservationEvent,
    OsGuess,
    to_event,
)


def sample_events() -> list:
    return [
        FlowEvent(
            ts_start=1732270000.125,
            ts_end=1732270003.5,
            proto="tcp",
            src="192.0.2.10",
            sport=51000,
            dst="203.0.113.5",
            dport=443,
            pkts_fwd=12,
            pkts_rev=10,
            bytes_fwd=1800,
            bytes_rev=9000,
            tcp_flags="SAFP",
            end_reason="fin",
            app="tls",
            src_mac="02:00:00:00:00:0a",
            dst_mac="02:00:00:00:ff:01",
        ),
        DeviceEvent(
            mac="02:00:00:00:00:0a",
            first_seen=1732269000.0,
            last_seen=1732270003.5,
            vendor="Example Corp",
            ips=["192.0.2.10"],
            names=[DeviceName("printer-1", "dhcp")],
            os=OsGuess("Linux", "5"),
            device_type="printer",
            confidence=0.8,
            evidence=[Evidence("dhcp", "1,3,6,15", {"os": "Linux"}, 0.5, 1732269000.0, 1732270000.0)],
            fingerprints={"ja4": ["t13d1516h2_8daaf6152771_e5627efa2ab1"]},
        ),
        AlertEvent(
            ts=1732270001.0,
            sid=2100498,
            msg="GPL ATTACK_RESPONSE id check returned root",
            rev=7,
            classtype="bad-unknown",
            severity=2,
            src="203.0.113.5",
            sport=80,
            dst="192.0.2.10",
            dport=51001,
            proto="tcp",
            app_proto="http",
            app_fields={"hostname": "example.net"},
        ),
        HealthEvent(ts=1732270005.0, packets=1000, drops_kernel=1, shed={"flow": 3}, events_by_type={"flow": 9}),
        ObservationEvent(
            ts=1732270000.2,
            kind="dhcp",
            src_mac="02:00:00:00:00:0a",
            fields={"params": [1, 3, 6], "hostname": "printer-1", "nested": {"a": None}},
        ),
    ]


def test_round_trip_and_plain_msgpack_reads_every_batch() -> None:
    batch = new_batch("agent-1", "school-a", 7, 1732270006.0, sample_events())
    body = encode_batch(batch)
    assert decode_batch(body) == batch
    plain = msgpack.unpackb(body)
    assert plain["schema"] == SCHEMA_VERSION and plain["seq"] == 7
    assert [e["type"] for e in plain["events"]] == ["flow", "device", "alert", "health", "obs"]
    assert plain["events"][0]["dp"] == 443 and plain["events"][2]["sid"] == 2100498
    assert plain["events"][4]["fields"]["params"] == [1, 3, 6]


def test_v1_batch_decodes_with_v2_defaults() -> None:
    # A version-1 batch, written by hand with plain msgpack: no `app`/`vlan` on flows, no fingerprints,
    # no v2 health counters, and no observation events.
    v1 = {
        "schema": 1,
        "agent_id": "agent-old",
        "site": "library",
        "seq": 1,
        "created": 1700000000.0,
        "events": [
            {
                "type": "flow",
                "t0": 1.0,
                "t1": 2.0,
                "p": "udp",
                "s": "192.0.2.1",
                "sp": 5353,
                "d": "192.0.2.2",
                "dp": 53,
                "pf": 1,
                "pr": 1,
                "bf": 60,
                "br": 120,
                "er": "idle",
            },
            {"type": "device", "mac": "02:00:00:00:00:01", "first_seen": 1.0, "last_seen": 2.0, "vendor": "X"},
            {"type": "health", "ts": 3.0, "packets": 10, "batches_sent": 1},
        ],
    }
    batch = decode_batch(msgpack.packb(v1))
    assert batch.schema == 1
    flow, device, health = batch.events
    assert isinstance(flow, FlowEvent) and flow.app is None and flow.vlan is None and flow.dport == 53
    assert isinstance(device, DeviceEvent) and device.fingerprints == {} and device.pseudonymised is False
    assert isinstance(health, HealthEvent) and health.shed == {} and health.uplink_bytes == 0


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b["events"][2].__setitem__("sid", "x"), "$.events[2].sid"),
        (lambda b: b["events"][0].__setitem__("dp", 70000), "$.events[0].dp"),
        (lambda b: b["events"][1].__setitem__("type", "nope"), "$.events[1].type"),
        (lambda b: b.__setitem__("schema", 3), "$.schema"),
        (lambda b: b.pop("seq"), "$"),
        (lambda b: b.__setitem__("agent_id", "bad id!"), "$.agent_id"),
        (lambda b: b["events"][3].__setitem__("shed", {"flow": -1}), "$.events[3].shed[...]"),
        (lambda b: b["events"][4]["fields"]["nested"].__setitem__("x", [b"raw"]), "$.events[4].fields.nested.x[0]"),
        (
            lambda b: b["events"][2]["app_fields"].__setitem__("h", [[[[[[[[[1]]]]]]]]]),
            "$.events[2].app_fields.h" + "[0]" * 7,
        ),
        (lambda b: b["events"][4]["fields"].__setitem__("long", "x" * 5000), "$.events[4].fields.long"),
    ],
)
def test_schema_error_names_the_field(mutate, path) -> None:
    plain = msgpack.unpackb(encode_batch(new_batch("agent-1", "s", 1, 1.0, sample_events())))
    mutate(plain)
    with pytest.raises(SchemaError) as info:
        decode_batch(msgpack.packb(plain))
    assert info.value.path == path, str(info.value)


def test_max_events() -> None:
    body = encode_batch(new_batch("a", "s", 1, 1.0, sample_events()))
    with pytest.raises(SchemaError, match="5 events, more than the limit of 4"):
        decode_batch(body, max_events=4)


@pytest.mark.parametrize("encoding", ["zstd", "gzip", "identity"])
def test_compression_round_trip(encoding: str) -> None:
    body = encode_batch(new_batch("a", "s", 1, 1.0, sample_events() * 50))
    packed = compress(body, encoding)
    assert decompress(packed, encoding, len(body)) == body
    with pytest.raises(BodyTooLarge):
        decompress(packed, encoding, len(body) - 1)


def test_zip_bombs_stop_at_the_cap() -> None:
    huge = 1 << 30  # 1 GiB of zeros compresses to ~32 KiB (zstd) / ~1 MiB (gzip)
    zbomb = zstandard.ZstdCompressor(level=1).compress(b"\0" * (64 << 20)) * 16  # 16 frames of 64 MiB
    with pytest.raises(BodyTooLarge):
        decompress(zbomb, "zstd", 1 << 20)
    gz = gzip.compress(b"\0" * (huge // 16), compresslevel=1)
    with pytest.raises(BodyTooLarge):
        decompress(gz, "gzip", 1 << 20)


def test_bad_encodings() -> None:
    with pytest.raises(UnsupportedEncoding):
        decompress(b"x", "br")
    with pytest.raises(EncodingError):
        decompress(b"not gzip", "gzip")
    with pytest.raises(EncodingError):
        decompress(gzip.compress(b"abc")[:-4], "gzip")
    with pytest.raises(EncodingError):
        decompress(gzip.compress(b"abc") + b"junk", "gzip")
    with pytest.raises(EncodingError):
        decompress(b"\x28\xb5\x2f\xfd garbage", "zstd")


def test_to_event_from_replay_lines() -> None:
    flow = to_event(
        {
            "type": "flow",
            "ts_start": 1.0,
            "ts_end": 2.0,
            "proto": "tcp",
            "src": "192.0.2.1",
            "sport": 1,
            "dst": "192.0.2.2",
            "dport": 2,
            "vlan": None,
            "community_id": "1:x",
        }
    )
    assert isinstance(flow, FlowEvent) and flow.dport == 2 and flow.community_id is None
    gre = to_event(
        {
            "type": "flow",
            "ts_start": 1.0,
            "ts_end": 2.0,
            "proto": 47,
            "src": "192.0.2.1",
            "sport": 0,
            "dst": "192.0.2.2",
            "dport": 0,
        }
    )  # no name for GRE: the protocol number (docs/events.md)
    assert decode_batch(encode_batch(new_batch("a", "s", 1, 1.0, [gre]))).events[0].proto == 47
    obs = to_event(
        {
            "type": "dhcp",
            "ts": 5.0,
            "src_mac": "02:00:00:00:00:01",
            "src": "0.0.0.0",
            "sport": 68,
            "dst": "255.255.255.255",
            "dport": 67,
            "proto": "udp",
            "pkt": 3,
            "params": [1, 3],
        }
    )
    assert isinstance(obs, ObservationEvent) and obs.kind == "dhcp" and obs.fields["params"] == [1, 3]
    assert obs.fields["pkt"] == 3
    with pytest.raises(msgspec.ValidationError, match=r"\$.dp"):
        to_event(
            {
                "type": "flow",
                "ts_start": 1.0,
                "ts_end": 2.0,
                "proto": "tcp",
                "src": "a",
                "sport": 1,
                "dst": "b",
                "dport": -2,
            }
        )
