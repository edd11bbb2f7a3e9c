"""IOC lists: file formats (plain, hosts, SSLBL CSV), lookups, and alerts on packets and observations."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.observe import Observation
from signatures.ioc import SID_IOC_DOMAIN, SID_IOC_IP, SID_IOC_JA3, SID_IOC_JA4, IocFileError, IocSet, parse_line
from tests.signatures.rules.frames import CLIENT, SERVER, Conversation, pkt_tcp, pkt_udp

SSLBL = """################################################################
# abuse.ch SSLBL JA3 Fingerprint Blacklist (CSV)               #
################################################################
#
# ja3_md5,Firstseen,Lastseen,Listingreason
b386946a5a44d1ddcc843bc75336dfce,2017-07-14 18:08:15,2019-07-27 20:42:54,Dridex
8991a387e4cc841740f25d6f5139f92d,2017-07-14 19:09:48,2019-07-14 15:20:38,Adwind
"""


def write(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text)
    return str(p)


@pytest.fixture
def iocs(tmp_path: Path) -> IocSet:
    return IocSet.load(
        [
            write(
                tmp_path, "bad-hosts.txt", "# comment\n198.51.100.0/24  ; a network\n2001:db8:bad::/48\n203.0.113.7\n"
            ),
            write(tmp_path, "bad-domains.txt", "evil.example\n0.0.0.0 ads.example.net\n*.wild.example\n"),
            write(tmp_path, "sslbl.csv", SSLBL),
            write(tmp_path, "ja4.txt", "t13d1516h2_8daaf6152771_e5627efa2ab1 # some bot\n"),
        ]
    )


def test_lookups(iocs: IocSet) -> None:
    assert len(iocs) == 9
    ip = ipaddress.ip_address
    hit = iocs.lookup_ip(ip("198.51.100.77").packed)
    assert hit is not None and hit.list_name == "bad-hosts" and hit.reason == "a network"
    assert iocs.lookup_ip(ip("198.51.101.1").packed) is None
    assert iocs.lookup_ip(ip("2001:db8:bad:1::9").packed) is not None
    assert iocs.lookup_ip(ip("2001:db8:bae::1").packed) is None
    assert iocs.lookup_domain("evil.example") is not None
    assert iocs.lookup_domain("a.b.EVIL.example.") is not None
    assert iocs.lookup_domain("notevil.example") is None
    assert iocs.lookup_domain("x.wild.example") is not None
    assert iocs.lookup_domain("ads.example.net") is not None


def test_match_packet(iocs: IocSet) -> None:
    (a,) = iocs.match_packet(pkt_tcp(b"", 0x02, dst="198.51.100.20"))
    assert a.sid == SID_IOC_IP and a.app["list"] == "bad-hosts" and a.dst == "198.51.100.20"
    assert a.to_event()["type"] == "alert" and "bad-hosts" in a.msg and a.classtype == "ioc-match"
    assert iocs.match_packet(pkt_tcp(b"", 0x02, dst="192.0.2.99")) == []


def test_match_observations(iocs: IocSet) -> None:
    q = pkt_udp(b"", src=CLIENT, dst="192.0.2.53")
    dns = Observation("dns", {"query": "cdn.evil.example", "response": False}, None, q, None, 0)
    (a,) = iocs.match_observation(dns)
    assert a.sid == SID_IOC_DOMAIN and a.app["query"] == "cdn.evil.example"
    assert (
        iocs.match_observation(Observation("dns", {"query": "cdn.evil.example", "response": True}, None, q, None, 1))
        == []
    )
    c = Conversation(dport=443)
    p, f, d = c.send(0, b"\x16")
    tls = {
        "sni": "ads.example.net",
        "ja3": "B386946A5A44D1DDCC843BC75336DFCE",
        "ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1",
    }
    got = iocs.match_observation(Observation("tls_client", tls, None, p, f, d))
    assert sorted(a.sid for a in got) == [SID_IOC_DOMAIN, SID_IOC_JA3, SID_IOC_JA4]
    ja3 = next(a for a in got if a.sid == SID_IOC_JA3)
    assert "Dridex" in ja3.msg and ja3.app["list"] == "sslbl" and ja3.community_id == f.community_id
    http = Observation("http", {"host": "www.evil.example:8080"}, None, p, f, d)
    assert [a.sid for a in iocs.match_observation(http)] == [SID_IOC_DOMAIN]
    assert iocs.match_observation(Observation("http", {"host": "fine.example"}, None, p, f, d)) == []
    assert SERVER  # documentation addresses only


def test_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(IocFileError, match=r"bad.txt:2: not an IP"):
        IocSet.load([write(tmp_path, "bad.txt", "192.0.2.1\n!!nonsense!!\n")])
    with pytest.raises(IocFileError, match="no IP, JA3 or JA4"):
        parse_line("a,b,c", "x", "f:1")
    with pytest.raises(IocFileError, match=r"missing\.txt"):
        IocSet.load([str(tmp_path / "missing.txt")])


def test_many_networks_nested_lookup() -> None:
    from signatures.ioc import Indicator

    items = [Indicator("ip", f"10.{i}.0.0/16", "big") for i in range(256)]
    items.append(Indicator("ip", "10.5.5.0/24", "narrow"))
    items.append(Indicator("ip", "10.0.0.0/8", "wide"))
    s = IocSet.from_indicators(items)
    ip = ipaddress.ip_address
    assert s.lookup_ip(ip("10.5.5.5").packed).list_name == "narrow"  # type: ignore[union-attr]
    assert s.lookup_ip(ip("10.5.6.5").packed).list_name == "big"  # type: ignore[union-attr]
    assert s.lookup_ip(ip("11.0.0.1").packed) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_parse_line_value_or_error(line: str) -> None:
    try:
        ind = parse_line(line, "l", "f:1")
    except IocFileError as exc:
        assert "f:1" in str(exc)
        return
    assert ind is None or (ind.kind in ("ip", "domain", "ja3", "ja4") and ind.value)
