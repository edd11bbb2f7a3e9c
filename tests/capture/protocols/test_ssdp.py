"""SSDP: golden datagrams of the three kinds, case-insensitive headers, bad start lines."""

from __future__ import annotations

import pytest

from capture.errors import DecodeError
from capture.protocols.ssdp import parse_ssdp

M_SEARCH = (
    b"M-SEARCH * HTTP/1.1\r\n"  # start line
    b"HOST: 239.255.255.250:1900\r\n"
    b'MAN: "ssdp:discover"\r\n'
    b"MX: 1\r\n"
    b"ST: urn:dial-multiscreen-org:service:dial:1\r\n"
    b"USER-AGENT: Google Chrome/120.0 Windows\r\n"
    b"\r\n"
)

NOTIFY = (
    b"NOTIFY * HTTP/1.1\r\n"
    b"Host: 239.255.255.250:1900\r\n"
    b"Cache-Control: max-age=1800\r\n"
    b"Location: http://192.0.2.20:49152/description.xml\r\n"
    b"nt: upnp:rootdevice\r\n"  # lower-case header names occur in the wild
    b"NTS: ssdp:alive\r\n"
    b"server: Linux/3.14 UPnP/1.0 IpBridge/1.26.0\r\n"
    b"USN: uuid:2f402f80-da50-11e1-9b23-001788255acc::upnp:rootdevice\r\n"
    b"\r\n"
)

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"CACHE-CONTROL: max-age=100\r\n"
    b"EXT:\r\n"  # empty value
    b"LOCATION: http://192.0.2.21:80/description.xml\r\n"
    b"SERVER: FreeRTOS/6.0.5, UPnP/1.0, IpBridge/1.17.0\r\n"
    b"ST: upnp:rootdevice\r\n"
    b"USN: uuid:2f402f80-da50-11e1-9b23-00178829d301::upnp:rootdevice\r\n"
)  # no final empty line: the datagram ends the head


def test_golden_m_search() -> None:
    assert parse_ssdp(M_SEARCH).fields() == {
        "method": "M-SEARCH",
        "st": "urn:dial-multiscreen-org:service:dial:1",
        "nt": None,
        "nts": None,
        "usn": None,
        "server": None,
        "user_agent": "Google Chrome/120.0 Windows",
        "location": None,
    }


def test_golden_notify_with_mixed_case_headers() -> None:
    f = parse_ssdp(NOTIFY).fields()
    assert (f["method"], f["nt"], f["nts"], f["server"], f["location"]) == (
        "NOTIFY",
        "upnp:rootdevice",
        "ssdp:alive",
        "Linux/3.14 UPnP/1.0 IpBridge/1.26.0",
        "http://192.0.2.20:49152/description.xml",
    )
    assert f["usn"] == "uuid:2f402f80-da50-11e1-9b23-001788255acc::upnp:rootdevice"


def test_golden_search_response_without_final_empty_line() -> None:
    m = parse_ssdp(RESPONSE)
    assert (m.method, m.status, m.header("ext"), m.fields()["st"]) == ("HTTP", 200, "", "upnp:rootdevice")


def test_bare_lf_line_ends() -> None:
    assert parse_ssdp(M_SEARCH.replace(b"\r\n", b"\n")).fields()["st"] == "urn:dial-multiscreen-org:service:dial:1"


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # not an SSDP method
        b"M-SEARCH * HTTP/1.1",  # no line end at all
        b"\x00\x01\x02\r\n",
        b"HTTP/1.1 OK\r\n\r\n",  # status code missing
    ],
)
def test_bad_start_line(payload: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        parse_ssdp(payload)
    assert err.value.reason == "ssdp.bad_start_line"


def test_header_without_colon() -> None:
    with pytest.raises(DecodeError) as err:
        parse_ssdp(b"NOTIFY * HTTP/1.1\r\nNT upnp:rootdevice\r\n\r\n")
    assert (err.value.reason, err.value.offset) == ("ssdp.bad_header", 19)


def test_header_flood() -> None:
    with pytest.raises(DecodeError) as err:
        parse_ssdp(b"NOTIFY * HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n")
    assert err.value.reason == "ssdp.too_many_headers"
