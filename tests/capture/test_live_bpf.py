"""BPF compilation, ring geometry checks and netinfo reads; no root needed."""

from __future__ import annotations

import shutil
import socket

import pytest

from capture import bpf
from capture.bpf import BPF_K, BPF_RET, BpfError, compile_bpf, parse_ddd
from capture.live import LiveCaptureError, LiveConfig, RingCapture, check_ring
from capture.netinfo import list_interfaces, neighbours, nud_state_name

EXPRESSIONS = ["", "udp port 53", "tcp[tcpflags] & tcp-syn != 0", "arp or icmp6", "net 192.0.2.0/24 and not port 22"]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_tcpdump_fallback_compiles_the_same_program_as_libpcap(expr: str) -> None:
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed, the fallback compiler cannot run")

    # The two differ only in the snap length of accepting returns, which compile_bpf rewrites.
    def norm(insns: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
        return [(c, jt, jf, 1 if c == BPF_RET | BPF_K and k else k) for c, jt, jf, k in insns]

    via_scapy = norm(bpf._compile_with_scapy(expr, 1))
    via_tcpdump = norm(bpf._compile_with_tcpdump(expr, 1))
    assert via_scapy == via_tcpdump
    assert len(via_scapy) >= 1


def test_accepting_returns_carry_the_snaplen() -> None:
    prog = compile_bpf("udp port 53", snaplen=128)
    rets = [(code, k) for code, _jt, _jf, k in prog.instructions if code == BPF_RET | BPF_K]
    assert sorted({k for _c, k in rets}) == [0, 128]
    assert len(prog.to_bytes()) == 8 * len(prog.instructions)


def test_empty_expression_accepts_everything() -> None:
    assert compile_bpf("", snaplen=100).instructions == ((BPF_RET | BPF_K, 0, 0, 100),)


def test_bad_expression_names_the_expression() -> None:
    with pytest.raises(BpfError, match=r"'udp prt 53'.*syntax error"):
        compile_bpf("udp prt 53")


def test_bad_snaplen_is_refused() -> None:
    with pytest.raises(BpfError, match="snaplen 0"):
        compile_bpf("udp", snaplen=0)


def test_parse_ddd_rejects_a_short_dump() -> None:
    assert parse_ddd("x", "2\n40 0 0 12\n6 0 0 65535\n") == [(40, 0, 0, 12), (6, 0, 0, 65535)]
    with pytest.raises(BpfError, match="announced 3 instructions and gave 2"):
        parse_ddd("x", "3\n40 0 0 12\n6 0 0 65535\n")
    with pytest.raises(BpfError, match="unreadable"):
        parse_ddd("x", "2\n40 0 zero 12\n")


def test_attach_filter_on_a_real_socket() -> None:
    # An AF_UNIX datagram socket accepts classic BPF too, so this runs without CAP_NET_RAW.
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        bpf.attach_filter(b, bpf.BpfProgram("drop all", ((BPF_RET | BPF_K, 0, 0, 0),)))
        a.send(b"dropped")
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(64)
        bad = bpf.BpfProgram("jump out", ((0x05, 0, 0, 10),))  # BPF_JMP|BPF_JA past the end
        with pytest.raises(BpfError, match="kernel refused"):
            bpf.attach_filter(b, bad)


def test_check_ring_names_every_bad_key() -> None:
    assert check_ring(1 << 18, 32, 2048, 100) == []
    problems = dict(check_ring(5000, 0, 40, 0))
    assert set(problems) == {"block_size", "block_count", "frame_size", "timeout_ms"}
    assert "power of two multiple of the page size" in problems["block_size"]
    assert dict(check_ring(4096, 1, 8192, 1)) == {"frame_size": "must not exceed block_size"}


def test_bad_ring_geometry_is_refused_before_any_socket() -> None:
    with pytest.raises(LiveCaptureError, match=r"ring\.block_size"):
        RingCapture("lo", LiveConfig(block_size=1000), None)


def test_missing_interface_is_named() -> None:
    with pytest.raises(LiveCaptureError, match="capture on nosuchif0: no such interface"):
        RingCapture("nosuchif0", LiveConfig(), None)


def test_list_interfaces_sees_loopback() -> None:
    lo = next(i for i in list_interfaces() if i.name == "lo")
    assert lo.up
    assert "127.0.0.1" in lo.addresses
    assert lo.index == socket.if_nametoindex("lo")


def test_neighbours_are_well_formed() -> None:
    for n in neighbours():
        assert n.mac.count(":") == 5
        assert n.state != ""


def test_nud_state_names() -> None:
    assert nud_state_name(0x02) == "REACHABLE"
    assert nud_state_name(0x04 | 0x10) == "STALE|PROBE"
    assert nud_state_name(0) == "NONE"
