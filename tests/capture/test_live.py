"""LiveSource on real kernel interfaces: a veth pair whose far end sits in a fresh netns.

Frames are sent from the netns with a raw AF_PACKET socket and must come out of the
capture end; documentation addresses only. Needs root (netns, veth, packet sockets).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from capture.live import LiveCaptureError, LiveConfig, LiveSource, RingCapture, SocketCapture
from capture.netinfo import list_interfaces

pytestmark = pytest.mark.netns

_counter = itertools.count()
MARK = b"veille-live-test"


@dataclass
class Veth:
    ns: str
    cap: str
    peer: str
    sender: socket.socket

    def send(self, frames: list[bytes]) -> None:
        for frame in frames:
            self.sender.send(frame)


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace, a veth pair and packet sockets")


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def make_veth(ns: str, cap: str, peer: str) -> None:
    """Create cap<->peer, peer inside `ns`, both up, IPv6 off so the kernel stays quiet."""
    _sh("ip", "link", "add", cap, "type", "veth", "peer", "name", peer, "netns", ns)
    with open(f"/proc/sys/net/ipv6/conf/{cap}/disable_ipv6", "w") as f:
        f.write("1")
    _sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{peer}.disable_ipv6=1")
    _sh("ip", "link", "set", cap, "up")
    _sh("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")


def open_sender(ns: str, peer: str) -> socket.socket:
    from pyroute2 import netns

    sock = netns.create_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((peer, 0))
    return sock


@pytest.fixture
def veth() -> Iterator[Veth]:
    _need_root()
    from pyroute2 import netns

    n = next(_counter)
    tag = f"{os.getpid() % 100000}{n}"
    ns, cap, peer = f"vlt{tag}", f"vc{tag}", f"vp{tag}"
    netns.create(ns)
    sender = None
    try:
        make_veth(ns, cap, peer)
        sender = open_sender(ns, peer)
        yield Veth(ns, cap, peer, sender)
    finally:
        if sender is not None:
            sender.close()
        subprocess.run(["ip", "link", "del", cap], capture_output=True, check=False)
        netns.remove(ns)


def udp_frame(n: int, dport: int = 9999, vlan: int | None = None, prio: int = 0) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Ether

    eth = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan, prio=prio)
    pkt = eth / IP(src="192.0.2.2", dst="192.0.2.1") / UDP(sport=40000, dport=dport) / (MARK + b"%06d" % n)
    return bytes(pkt)


def collect(src: LiveSource, want: int, timeout: float = 5.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got.extend(f.data for f in src.read_block(0.2) if MARK in f.data)
    return got


SMALL_RING = {"block_size": 4096, "block_count": 4, "frame_size": 2048, "timeout_ms": 10}


@pytest.mark.parametrize("ring", [True, False], ids=["ring", "socket"])
def test_frames_arrive_intact_with_kernel_timestamps(veth: Veth, ring: bool) -> None:
    sent = [udp_frame(i) for i in range(50)]
    before = time.time_ns()
    with LiveSource([veth.cap], LiveConfig(ring=ring, timeout_ms=10)) as src:
        mode = src.stats().interfaces[0].mode
        veth.send(sent)
        got = collect(src, len(sent))
        frames_ts = []
        veth.send([udp_frame(999)])
        deadline = time.monotonic() + 5
        while not frames_ts and time.monotonic() < deadline:
            frames_ts = [f.ts_ns for f in src.read_block(0.2) if MARK in f.data]
    assert mode == ("ring" if ring else "socket")
    assert got == sent
    assert before <= frames_ts[0] <= time.time_ns()


@pytest.mark.parametrize("ring", [True, False], ids=["ring", "socket"])
def test_vlan_tag_is_put_back_into_the_frame(veth: Veth, ring: bool) -> None:
    tagged = [udp_frame(i, vlan=100 + i, prio=i % 8) for i in range(5)]
    with LiveSource([veth.cap], LiveConfig(ring=ring, timeout_ms=10)) as src:
        veth.send(tagged)
        got = collect(src, len(tagged))
    assert got == tagged
    assert [int.from_bytes(g[14:16], "big") & 0xFFF for g in got] == [100, 101, 102, 103, 104]


def test_bpf_filter_drops_in_the_kernel(veth: Veth) -> None:
    wanted = [udp_frame(i, dport=9999) for i in range(20)]
    unwanted = [udp_frame(100 + i, dport=9998) for i in range(20)]
    with LiveSource([veth.cap], LiveConfig(bpf="udp dst port 9999", timeout_ms=10)) as src:
        veth.send([f for pair in zip(wanted, unwanted, strict=True) for f in pair])
        got = collect(src, len(wanted))
        time.sleep(0.1)
        got.extend(f.data for f in src.read_block(0.1))
        stats = src.stats().interfaces[0]
    assert got == wanted
    # Frames the filter rejects never reach the socket, so the kernel does not count them.
    assert stats.kernel_packets == len(wanted)


def test_snaplen_truncates_in_the_kernel(veth: Veth) -> None:
    frame = udp_frame(1)
    with LiveSource([veth.cap], LiveConfig(snaplen=60, timeout_ms=10)) as src:
        veth.send([frame])
        got: list[bytes] = []
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            got = [f.data for f in src.read_block(0.2) if f.data[:42] == frame[:42]]
    assert got == [frame[:60]]


def _promiscuity(name: str) -> int:
    return next(i.promiscuity for i in list_interfaces() if i.name == name)


def test_promiscuous_membership_follows_the_source(veth: Veth) -> None:
    assert _promiscuity(veth.cap) == 0
    src = LiveSource([veth.cap], LiveConfig(promisc=True))
    try:
        during = _promiscuity(veth.cap)
    finally:
        src.close()
    assert during == 1
    assert _promiscuity(veth.cap) == 0
    with LiveSource([veth.cap], LiveConfig(promisc=False)):
        assert _promiscuity(veth.cap) == 0


def test_kernel_drops_are_counted_when_the_ring_is_full(veth: Veth) -> None:
    cfg = LiveConfig(block_size=4096, block_count=2, frame_size=2048, timeout_ms=10)
    cap = RingCapture(veth.cap, cfg, None)
    try:
        veth.send([udp_frame(i) for i in range(500)])
        time.sleep(0.2)
        packets, drops, _freezes = cap.kernel_stats()
        read = sum(len(b) for b in cap.read_blocks())
    finally:
        cap.close()
    print(f"ring of 2x4 KiB: {packets} packets, {drops} dropped by the kernel, {read} read")
    assert packets == 500
    assert drops > 0
    assert read == packets - drops


def test_socket_fallback_counts_drops_too(veth: Veth) -> None:
    cap = SocketCapture(veth.cap, LiveConfig(ring=False), None)
    try:
        cap.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        veth.send([udp_frame(i) for i in range(300)])
        time.sleep(0.2)
        packets, drops, _ = cap.kernel_stats()
    finally:
        cap.close()
    assert packets == 300
    assert drops > 0


def test_full_queue_drops_blocks_and_counts_them(veth: Veth) -> None:
    cfg = LiveConfig(block_size=4096, block_count=64, frame_size=2048, timeout_ms=10, queue_blocks=1)
    with LiveSource([veth.cap], cfg) as src:
        veth.send([udp_frame(i) for i in range(400)])
        time.sleep(0.5)
        stats = src.stats().interfaces[0]
        queued = src.read_block(1.0)
    print(
        f"queue of 1 block: {stats.frames} queued, {stats.pipeline_drops} dropped for the pipeline, "
        f"{stats.kernel_drops} by the kernel"
    )
    assert stats.pipeline_drops > 0
    assert stats.frames == len(queued)
    assert stats.frames + stats.pipeline_drops + stats.kernel_drops == 400


def test_several_interfaces_at_once(veth: Veth) -> None:
    from pyroute2 import netns

    ns2 = veth.ns + "b"
    cap2, peer2 = veth.cap + "b", veth.peer + "b"
    netns.create(ns2)
    try:
        make_veth(ns2, cap2, peer2)
        sender2 = open_sender(ns2, peer2)
        with LiveSource([veth.cap, cap2], LiveConfig(timeout_ms=10)) as src:
            veth.send([udp_frame(i) for i in range(10)])
            sender2.send(udp_frame(500))
            seen: dict[str, int] = {}
            deadline = time.monotonic() + 5
            while sum(seen.values()) < 11 and time.monotonic() < deadline:
                block = src.read_tagged_block(0.2)
                if block is not None:
                    seen[block.iface] = seen.get(block.iface, 0) + sum(MARK in f.data for f in block.frames)
        sender2.close()
    finally:
        subprocess.run(["ip", "link", "del", cap2], capture_output=True, check=False)
        netns.remove(ns2)
    assert seen == {veth.cap: 10, cap2: 1}


def test_link_down_and_up_keeps_capturing(veth: Veth) -> None:
    with LiveSource([veth.cap], LiveConfig(timeout_ms=10)) as src:
        _sh("ip", "link", "set", veth.cap, "down")
        time.sleep(0.2)
        assert not src.stats().interfaces[0].up
        _sh("ip", "link", "set", veth.cap, "up")
        time.sleep(0.3)
        veth.send([udp_frame(i) for i in range(5)])
        got = collect(src, 5)
        stats = src.stats().interfaces[0]
    assert len(got) == 5
    assert stats.up and stats.reopens == 0


def test_interface_removed_and_recreated_is_reopened(veth: Veth) -> None:
    with LiveSource([veth.cap], LiveConfig(timeout_ms=10)) as src:
        veth.sender.close()
        _sh("ip", "link", "del", veth.cap)
        time.sleep(0.3)
        gone = src.stats().interfaces[0]
        make_veth(veth.ns, veth.cap, veth.peer)
        veth.sender = open_sender(veth.ns, veth.peer)
        deadline = time.monotonic() + 5
        while src.stats().interfaces[0].reopens == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        veth.send([udp_frame(i) for i in range(5)])
        got = collect(src, 5)
        back = src.stats().interfaces[0]
    assert (gone.up, gone.mode) == (False, "closed")
    assert (back.up, back.mode, back.reopens) == (True, "ring", 1)
    assert len(got) == 5


def test_filter_swapped_without_reopening(veth: Veth) -> None:
    from capture.bpf import BpfError

    with LiveSource([veth.cap], LiveConfig(bpf="udp dst port 9999", timeout_ms=10)) as src:
        veth.send([udp_frame(1, dport=9998), udp_frame(2, dport=9999)])
        before = collect(src, 1)
        src.update_filter("udp dst port 9998")
        with pytest.raises(BpfError):
            src.update_filter("udp dst prt 9998")
        veth.send([udp_frame(3, dport=9998), udp_frame(4, dport=9999)])
        after = collect(src, 1)
        time.sleep(0.1)
        after.extend(f.data for f in src.read_block(0.1) if MARK in f.data)
        stats = src.stats().interfaces[0]
    assert before == [udp_frame(2, dport=9999)]
    assert after == [udp_frame(3, dport=9998)]
    assert stats.reopens == 0


def test_neighbours_and_addresses_of_a_real_link(veth: Veth) -> None:
    from capture.netinfo import neighbours

    _sh("ip", "addr", "add", "192.0.2.1/24", "dev", veth.cap)
    _sh("ip", "neigh", "add", "192.0.2.9", "lladdr", "02:00:00:00:00:09", "dev", veth.cap, "nud", "permanent")
    _sh("ip", "neigh", "add", "192.0.2.10", "lladdr", "02:00:00:00:00:0a", "dev", veth.cap, "nud", "stale")
    with open(f"/proc/sys/net/ipv6/conf/{veth.cap}/addr_gen_mode", "w") as f:
        f.write("1")  # no link-local address: only the one added below
    with open(f"/proc/sys/net/ipv6/conf/{veth.cap}/disable_ipv6", "w") as f:
        f.write("0")
    _sh("ip", "-6", "addr", "add", "2001:db8::1/64", "dev", veth.cap, "nodad")
    _sh("ip", "-6", "neigh", "add", "2001:db8::9", "lladdr", "02:00:00:00:00:09", "dev", veth.cap, "nud", "reachable")
    iface = next(i for i in list_interfaces() if i.name == veth.cap)
    mine = {(n.ip, n.mac, n.state) for n in neighbours() if n.ifindex == iface.index}
    assert sorted(iface.addresses) == ["192.0.2.1", "2001:db8::1"]
    assert iface.up and iface.mac is not None
    assert mine == {
        ("192.0.2.9", "02:00:00:00:00:09", "PERMANENT"),
        ("192.0.2.10", "02:00:00:00:00:0a", "STALE"),
        ("2001:db8::9", "02:00:00:00:00:09", "REACHABLE"),
    }


def test_a_dead_capture_thread_is_reported_not_silent(veth: Veth, caplog: pytest.LogCaptureFixture) -> None:
    src = LiveSource([veth.cap], LiveConfig(timeout_ms=10))
    try:
        cap = src._captures[veth.cap]
        assert isinstance(cap, RingCapture)
        cap._ring.close()  # the next walk of the ring fails inside the capture thread
        veth.send([udp_frame(1)])
        with pytest.raises(LiveCaptureError, match="capture thread failed"):
            src.read_block(None)
    finally:
        src.close()
    assert "capture thread failed" in caplog.text


def test_queue_full_is_logged(veth: Veth, caplog: pytest.LogCaptureFixture) -> None:
    cfg = LiveConfig(block_size=4096, block_count=64, frame_size=2048, timeout_ms=10, queue_blocks=1)
    with caplog.at_level("WARNING", logger="capture.live"), LiveSource([veth.cap], cfg) as src:
        veth.send([udp_frame(i) for i in range(200)])
        time.sleep(0.3)
        dropped = src.stats().pipeline_drops
    assert dropped > 0
    warnings = [r.getMessage() for r in caplog.records if "pipeline queue full" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited to one per drop_log_interval


def test_qinq_outer_tag_keeps_its_tpid(veth: Veth) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

    frame = bytes(
        Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
        / Dot1AD(vlan=10)
        / Dot1Q(vlan=20)
        / IP(src="192.0.2.2", dst="192.0.2.1")
        / UDP(sport=40000, dport=9999)
        / MARK
    )
    with LiveSource([veth.cap], LiveConfig(timeout_ms=10)) as src:
        veth.send([frame])
        got = collect(src, 1)
    assert got == [frame]
    assert got[0][12:14] == b"\x88\xa8"


def test_an_absent_interface_is_opened_when_it_appears(veth: Veth) -> None:
    from capture.live import LiveCaptureError

    late_cap, late_peer = veth.cap + "l", veth.peer + "l"
    with pytest.raises(LiveCaptureError, match="no such interface"):
        LiveSource([late_cap], LiveConfig())
    with LiveSource([late_cap], LiveConfig(timeout_ms=10, wait_for_interfaces=True)) as src:
        before = src.stats().interfaces[0]
        try:
            make_veth(veth.ns, late_cap, late_peer)
            sender = open_sender(veth.ns, late_peer)
            deadline = time.monotonic() + 5
            while src.stats().interfaces[0].mode == "closed" and time.monotonic() < deadline:
                time.sleep(0.05)
            sender.send(udp_frame(7))
            got = collect(src, 1)
            sender.close()
        finally:
            subprocess.run(["ip", "link", "del", late_cap], capture_output=True, check=False)
    assert (before.up, before.mode) == (False, "closed")
    assert got == [udp_frame(7)]


def test_link_watcher_resyncs_after_the_kernel_drops_events() -> None:
    _need_root()
    from capture.netinfo import LinkWatcher

    watcher = LinkWatcher()
    names = [f"vw{os.getpid() % 10000}x{i}" for i in range(40)]
    try:
        # A tiny receive buffer overflows on a burst of link events: recv then fails with ENOBUFS.
        watcher._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        for name in names:
            _sh("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p")
        events = watcher.read_events()
    finally:
        watcher.close()
        for name in names:
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    seen = {e.name for e in events}
    # Whatever was lost, every link that exists is reported, even lo, which had no event at all.
    assert set(names) <= seen
    assert "lo" in seen


@pytest.mark.parametrize("ring", [True, False], ids=["ring", "socket"])
@pytest.mark.parametrize("fixture", ["school_morning.pcap", "vlan.pcap", "lan_attacks.pcap"])
def test_fixture_captures_replayed_with_tcpreplay_come_out_byte_identical(veth: Veth, fixture: str, ring: bool) -> None:
    from capture.pcapfile import read_frames

    if shutil.which("tcpreplay") is None:
        pytest.skip("tcpreplay is not installed")
    path = Path(__file__).resolve().parents[2] / "pcaps" / fixture
    expected = [f.data for f in read_frames(path)]
    got: list[bytes] = []
    with LiveSource([veth.cap], LiveConfig(timeout_ms=10, ring=ring)) as src:
        cmd = ["ip", "netns", "exec", veth.ns, "tcpreplay", "-q", "-i", veth.peer, "--topspeed", str(path)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 10
        while len(got) < len(expected) and time.monotonic() < deadline:
            got.extend(f.data for f in src.read_block(0.2))
        stats = src.stats().interfaces[0]
    print(f"{fixture} ({stats.mode}): {len(got)}/{len(expected)} frames identical, {stats.kernel_drops} kernel drops")
    assert stats.kernel_drops == 0
    assert got == expected
