"""DHCPv4: golden bytes built field by field, hostile packets, and the Suricata/Zeek expectations."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from capture.errors import DecodeError
from capture.protocols.dhcp import DhcpMessage, parse_dhcp
from tests.capture.protocols.pcap_payloads import payloads

MAC = bytes.fromhex("00005e005301")  # RFC 7042 documentation MAC


def bootp(
    options: bytes,
    *,
    op: int = 1,
    ciaddr: bytes = bytes(4),
    yiaddr: bytes = bytes(4),
    sname: bytes = bytes(64),
    file: bytes = bytes(128),
    cookie: bytes = b"\x63\x82\x53\x63",
) -> bytes:
    return b"".join(
        [
            bytes([op]),  # op: 1 BOOTREQUEST, 2 BOOTREPLY
            b"\x01",  # htype: Ethernet
            b"\x06",  # hlen: 6
            b"\x00",  # hops
            b"\x39\x03\xf3\x26",  # xid
            b"\x00\x08",  # secs
            b"\x80\x00",  # flags: broadcast
            ciaddr,  # ciaddr
            yiaddr,  # yiaddr
            bytes(4),  # siaddr
            bytes(4),  # giaddr
            MAC + bytes(10),  # chaddr, padded to 16
            sname,  # sname (64)
            file,  # file (128)
            cookie,  # magic cookie 99.130.83.99
            options,
        ]
    )


DISCOVER = bootp(
    b"".join(
        [
            b"\x35\x01\x01",  # 53 message type: DISCOVER
            b"\x3d\x07\x01" + MAC,  # 61 client id: htype 1 + MAC
            b"\x32\x04\xc0\x00\x02\x0a",  # 50 requested IP 192.0.2.10
            b"\x0c\x07laptop\x00",  # 12 hostname "laptop" + NUL (as some clients send)
            b"\x3c\x08MSFT 5.0",  # 60 vendor class
            b"\x39\x02\x05\xdc",  # 57 max message size 1500
            b"\x37\x04\x01\x03\x06\x0f",  # 55 parameter request list 1,3,6,15
            b"\x00\x00",  # pad
            b"\x51\x0a\x05\x00\x00\x06laptop",  # 81 client FQDN, flags S|E=0 ASCII name
            b"\xff",  # end
        ]
    )
)


def test_golden_discover_fields() -> None:
    m = parse_dhcp(DISCOVER)
    assert m.fields() == {
        "msg_type": 1,
        "msg_type_name": "discover",
        "client_mac": "00:00:5e:00:53:01",
        "hostname": "laptop",
        "params": [1, 3, 6, 15],
        "vendor_class": "MSFT 5.0",
        "client_id": "01" + MAC.hex(),
        "requested_ip": "192.0.2.10",
        "server_id": None,
        "max_msg_size": 1500,
        "options": [53, 61, 50, 12, 60, 57, 55, 81],
        "yiaddr": "0.0.0.0",
        "ciaddr": "0.0.0.0",
    }
    assert m.xid == 0x3903F326
    assert m.client_fqdn == "laptop"


def test_golden_ack_with_server_id_and_addresses() -> None:
    ack = bootp(
        b"\x35\x01\x05"  # 53: ACK
        b"\x36\x04\xc6\x33\x64\x01"  # 54 server id 198.51.100.1
        b"\x33\x04\x00\x00\x0e\x10"  # 51 lease time 3600
        b"\xff",
        op=2,
        ciaddr=bytes([192, 0, 2, 10]),
        yiaddr=bytes([192, 0, 2, 10]),
    )
    f = parse_dhcp(ack).fields()
    assert (f["msg_type_name"], f["server_id"], f["yiaddr"], f["ciaddr"]) == (
        "ack",
        "198.51.100.1",
        "192.0.2.10",
        "192.0.2.10",
    )
    assert f["hostname"] is None and f["params"] == [] and f["options"] == [53, 54, 51]


def test_fqdn_in_wire_format() -> None:
    opt81 = b"\x51\x13\x05\x00\x00" + b"\x06laptop\x07example\x00"  # flags S|E: wire format
    assert parse_dhcp(bootp(b"\x35\x01\x03" + opt81 + b"\xff")).client_fqdn == "laptop.example"


def test_option_overload_reads_file_then_sname() -> None:
    file = (b"\x0c\x04host\xff").ljust(128, b"\x00")  # hostname in the file field
    sname = (b"\x3c\x03abc\xff").ljust(64, b"\x00")  # vendor class in the sname field
    m = parse_dhcp(bootp(b"\x35\x01\x01\x34\x01\x03\xff", file=file, sname=sname))
    assert m.hostname == "host" and m.vendor_class == "abc"
    assert m.options == (53, 52, 12, 60)


def test_repeated_option_is_concatenated_rfc3396() -> None:
    m = parse_dhcp(bootp(b"\x0c\x03lap\x0c\x03top\x35\x01\x01\xff"))
    assert m.hostname == "laptop" and m.options == (12, 12, 53)


def test_missing_end_option_is_accepted() -> None:
    assert parse_dhcp(bootp(b"\x35\x01\x08")).msg_type_name == "inform"


def test_unknown_message_type_name_is_its_number() -> None:
    assert parse_dhcp(bootp(b"\x35\x01\xc8\xff")).msg_type_name == "200"


# --- hostile packets -------------------------------------------------------------------------


def test_option_length_overflowing_the_packet() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp(bootp(b"\x35\x01\x01\x0c\xf0short"))
    assert err.value.reason == "dhcp.option_overflow" and err.value.offset == 243


def test_option_code_without_length_at_the_end() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp(bootp(b"\x35\x01\x01\x0c"))
    assert err.value.reason == "dhcp.option_overflow"


def test_option_overload_loop_is_not_followed() -> None:
    # Option 52 inside the file field points at the file field again (and at sname, which
    # points back at file): RFC 2131 only honours option 52 in the options field, so each
    # field is read at most once.
    file = (b"\x34\x01\x03" * 42).ljust(128, b"\x00")
    sname = (b"\x34\x01\x03" * 21).ljust(64, b"\x00")
    m = parse_dhcp(bootp(b"\x34\x01\x03\xff", file=file, sname=sname))
    assert m.options.count(52) == 1 + 42 + 21


def test_overload_option_inside_file_cannot_run_past_the_field() -> None:
    file = b"\x00" * 126 + b"\x0c\x10"  # hostname of 16 bytes announced at the field's end
    with pytest.raises(DecodeError) as err:
        parse_dhcp(bootp(b"\x34\x01\x01\xff", file=file))
    assert err.value.reason == "dhcp.option_overflow" and err.value.offset == 108 + 126


def test_option_flood_is_capped() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp(bootp(b"\x0b\x00" * 300))
    assert err.value.reason == "dhcp.too_many_options"


def test_bad_magic_cookie() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp(bootp(b"\xff", cookie=b"\x00\x00\x00\x00"))
    assert err.value.reason == "dhcp.bad_cookie" and err.value.offset == 236


def test_truncated_bootp_header() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp(DISCOVER[:200])
    assert err.value.reason == "dhcp.truncated"


def test_hostname_with_invalid_utf8_is_replaced_not_raised() -> None:
    assert parse_dhcp(bootp(b"\x0c\x03a\xffb\xff")).hostname == "a\ufffdb"


# --- other tools' expectations -----------------------------------------------------------------

# Suricata's names for the option 55 codes its extended DHCP log knows (rust/src/dhcp/logger.rs);
# other codes are not logged, so they are left out before comparing.
SURICATA_PARAM_NAMES = {1: "subnet_mask", 3: "router", 6: "dns_server", 15: "domain", 44: "nbns_server"}


def _messages(path: Path) -> list[DhcpMessage]:
    out = []
    for p in payloads(path).values():
        if p.proto == "udp" and {p.sport, p.dport} & {67, 68}:
            out.append(parse_dhcp(p.payload))
    return out


@pytest.mark.corpora
def test_agrees_with_suricata_verify_dhcp_eve_extended(corpora: Path) -> None:
    """suricata-verify `dhcp-eve-extended`: expected dhcp events for pcap_cnt 1 and 2."""
    case = corpora / "suricata-verify" / "dhcp-eve-extended"
    request, ack = _messages(case / "input.pcap")
    checks = []
    checks.append(("client_mac", request.client_mac, "00:11:32:17:49:f0"))
    # Suricata shows option 61 without its type octet, colon-separated.
    assert request.client_id is not None and request.client_id.startswith("01")
    checks.append(("client_id", bytes.fromhex(request.client_id[2:]).hex(":"), "00:11:32:17:49:f0"))
    checks.append(("client_ip", request.ciaddr, "10.16.1.4"))
    checks.append(("dhcp_type", request.msg_type_name, "request"))
    # Suricata keeps the NUL the client sent ("nas1\u0000"); we drop trailing NULs, as tshark.
    checks.append(("hostname", request.hostname, "nas1\u0000".rstrip("\x00")))
    checks.append(("id", request.xid, 4016330564))
    named = [SURICATA_PARAM_NAMES[c] for c in request.params if c in SURICATA_PARAM_NAMES]
    checks.append(("params", named[:4], ["subnet_mask", "router", "domain", "dns_server"]))
    checks.append(("ack dhcp_type", ack.msg_type_name, "ack"))
    checks.append(("ack assigned_ip", ack.yiaddr, "10.16.1.4"))
    checks.append(("ack client_ip", ack.ciaddr, "10.16.1.4"))
    checks.append(("ack hostname", ack.hostname, "nas1"))
    checks.append(("ack id", ack.xid, 4016330564))
    lease = ack.option(51)
    checks.append(("ack lease_time", int.from_bytes(lease or b"", "big"), 3600))
    agree = sum(1 for _, ours, theirs in checks if ours == theirs)
    print(f"DHCP agreement with suricata-verify dhcp-eve-extended: {agree}/{len(checks)} fields")
    assert [c for c in checks if c[1] != c[2]] == []


def _zeek_rows(log: Path) -> list[dict[str, str]]:
    fields: list[str] = []
    rows = []
    for line in log.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"), strict=True)))
    return rows


@pytest.mark.corpora
def test_agrees_with_zeek_dhcp_logs(corpora: Path) -> None:
    """Zeek's dhcp.log per capture: MACs, host names, requested and assigned addresses, types."""
    agree = total = 0
    for log in sorted((corpora / "protocols" / "upstream").glob("zeek__dhcp__*.dhcp.log")):
        pcap = corpora / "protocols" / "pcap" / (log.name.split(".pcap.")[0] + ".pcap")
        msgs = _messages(pcap)
        rows = _zeek_rows(log)
        ours_types = Counter(m.msg_type_name.upper() for m in msgs if m.msg_type_name)
        theirs_types = Counter(t for r in rows for t in r["msg_types"].split(","))
        checks = [("msg_types", ours_types, theirs_types)]
        for r in rows:
            checks.append(("mac", r["mac"] in {m.client_mac for m in msgs}, True))
            if r["host_name"] != "-":
                checks.append(("host_name", r["host_name"] in {m.hostname for m in msgs}, True))
            if r["requested_addr"] != "-":
                checks.append(("requested_addr", r["requested_addr"] in {m.requested_ip for m in msgs}, True))
            if r["assigned_addr"] != "-":
                acks = {m.yiaddr for m in msgs if m.msg_type_name == "ack"}
                checks.append(("assigned_addr", r["assigned_addr"] in acks, True))
        for name, ours, theirs in checks:
            total += 1
            agree += ours == theirs
            assert ours == theirs, f"{log.name}: {name}: ours={ours} zeek={theirs}"
    print(f"DHCP agreement with Zeek dhcp.log: {agree}/{total} checks")
    assert total >= 10


@pytest.mark.corpora
def test_agrees_with_arkime_dhcp_session(corpora: Path) -> None:
    """Arkime's expected session for wireshark-dhcp: client MACs, message types, transaction ids."""
    test = corpora / "protocols" / "upstream" / "arkime__wireshark-dhcp.pcap.wireshark-dhcp.test"
    expected = json.loads(test.read_text())["sessions3"][0]["body"]["dhcp"]
    msgs = _messages(corpora / "protocols" / "pcap" / "arkime__wireshark-dhcp.pcap")
    checks = [
        ("mac", sorted({m.client_mac for m in msgs}), expected["mac"]),
        ("type", sorted({(m.msg_type_name or "").upper() for m in msgs}), expected["type"]),
        ("id", sorted({f"{m.xid:x}" for m in msgs}), sorted(expected["id"])),
    ]
    agree = sum(1 for _, ours, theirs in checks if ours == theirs)
    print(f"DHCP agreement with Arkime wireshark-dhcp session: {agree}/{len(checks)} fields")
    assert [c for c in checks if c[1] != c[2]] == []
