"""Flow table: direction, TCP end, timeouts, bounds, reassembly."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from capture.decode import decode
from capture.flows import FlowConfig, FlowTable
from capture.packet import Packet

C, S = "192.0.2.10", "198.51.100.20"


def tcp(ts: float, src: str, dst: str, sport: int, dport: int, flags: str, seq: int = 0, data: bytes = b"") -> Packet:
    return decode(
        ts,
        1,
        bytes(
            Ether(src="00:00:5e:00:53:01", dst="00:00:5e:00:53:02")
            / IP(src=src, dst=dst)
            / TCP(sport=sport, dport=dport, flags=flags, seq=seq)
            / data
        ),
    )


def udp(ts: float, src: str, dst: str, sport: int, dport: int, data: bytes = b"x") -> Packet:
    return decode(
        ts,
        1,
        bytes(
            Ether(src="00:00:5e:00:53:01", dst="00:00:5e:00:53:02")
            / IP(src=src, dst=dst)
            / UDP(sport=sport, dport=dport)
            / data
        ),
    )


def handshake(t: FlowTable, ts: float = 0.0) -> None:
    t.update(tcp(ts, C, S, 40000, 80, "S", seq=99))
    t.update(tcp(ts + 0.01, S, C, 80, 40000, "SA", seq=499))
    t.update(tcp(ts + 0.02, C, S, 40000, 80, "A", seq=100))


def test_direction_and_counters() -> None:
    t = FlowTable()
    handshake(t)
    flow, d = t.update(tcp(0.03, S, C, 80, 40000, "PA", seq=500, data=b"HTTP/1.1 200 OK\r\n"))
    assert d == 1 and flow.established
    assert (flow.pkts_fwd, flow.pkts_rev) == (2, 2)
    ev = flow.to_event()
    assert (ev["src"], ev["sport"], ev["dst"], ev["dport"]) == (C, 40000, S, 80)
    assert ev["tcp_flags"] == "SAP"
    assert ev["bytes_fwd"] == 80 and ev["community_id"].startswith("1:")


def test_synack_first_makes_the_other_side_initiator() -> None:
    t = FlowTable()
    flow, d = t.update(tcp(0, S, C, 80, 40000, "SA"))
    assert d == 1 and flow.src == bytes([192, 0, 2, 10])


def test_fin_both_ways_then_linger_then_end() -> None:
    t = FlowTable(FlowConfig(closed_linger=5))
    handshake(t)
    t.update(tcp(1, C, S, 40000, 80, "FA", seq=100))
    t.update(tcp(1.1, S, C, 80, 40000, "FA", seq=500))
    t.update(tcp(1.2, C, S, 40000, 80, "A", seq=101))
    t.expire(3)
    assert not t.drain()
    t.expire(7)
    (f,) = t.drain()
    assert f.end_reason == "fin" and f.pkts_fwd == 4


def test_rst_ends_and_new_syn_starts_a_new_flow() -> None:
    t = FlowTable()
    handshake(t)
    t.update(tcp(1, S, C, 80, 40000, "R", seq=500))
    t.update(tcp(2, C, S, 40000, 80, "S", seq=7))
    (old,) = t.drain()
    assert old.end_reason == "rst"
    assert len(t) == 1 and t.created == 2


def test_idle_timeouts_per_protocol() -> None:
    t = FlowTable(FlowConfig(udp_timeout=60, tcp_timeout=300))
    t.update(udp(0, C, S, 5000, 53))
    handshake(t)
    t.expire(61)
    (f,) = t.drain()
    assert f.proto == 17 and f.end_reason == "idle"
    t.expire(301)
    (f,) = t.drain()
    assert f.proto == 6 and f.end_reason == "idle"


def test_active_timeout_reports_long_flows_and_keeps_them() -> None:
    t = FlowTable(FlowConfig(active_timeout=100, udp_timeout=1000))
    for i in range(150):
        t.update(udp(float(i), C, S, 5000, 9999))
        t.expire(float(i))
    recs = t.drain()
    assert [r.end_reason for r in recs] == ["active"]
    assert recs[0].pkts_fwd == 101 and len(t) == 1


def test_bounded_table_evicts_oldest_and_counts() -> None:
    t = FlowTable(FlowConfig(max_flows=10))
    for i in range(25):
        t.update(udp(float(i), C, S, 1000 + i, 53))
    assert len(t) == 10 and t.evicted == 15
    ended = t.drain()
    assert all(f.end_reason == "evict" for f in ended)
    assert ended[0].sport == 1000


def test_reassembly_in_order_out_of_order_and_depth() -> None:
    t = FlowTable(FlowConfig(stream_depth=12))
    handshake(t)
    t.update(tcp(1, C, S, 40000, 80, "PA", seq=105, data=b"world"))  # ahead of the gap
    flow, _ = t.update(tcp(1.1, C, S, 40000, 80, "PA", seq=100, data=b"hello"))
    assert flow.streams is not None and bytes(flow.streams[0]) == b"helloworld"
    t.update(tcp(1.2, C, S, 40000, 80, "PA", seq=100, data=b"hello"))  # retransmission
    assert bytes(flow.streams[0]) == b"helloworld"
    t.update(tcp(1.3, C, S, 40000, 80, "PA", seq=110, data=b"!!!!!"))
    assert bytes(flow.streams[0]) == b"helloworld!!"
    assert flow.inspect[0] is False


def test_flush_at_eof() -> None:
    t = FlowTable()
    handshake(t)
    t.update(udp(0, C, S, 1, 2))
    t.flush()
    assert sorted(f.end_reason for f in t.drain()) == ["eof", "eof"]
    assert len(t) == 0
