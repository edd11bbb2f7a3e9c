"""MAC parsing and the IEEE 802 I/G and U/L bits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signatures.macaddr import is_locally_administered, is_multicast, is_randomized, mac_bytes, mac_str


def test_forms() -> None:
    want = bytes.fromhex("a4c3f0112233")
    for text in ("a4:c3:f0:11:22:33", "A4-C3-F0-11-22-33", "a4c3.f011.2233", "a4c3f0112233", want):
        assert mac_bytes(text) == want
    assert mac_str(want) == "a4:c3:f0:11:22:33"
    for bad in ("a4:c3:f0", "zz:c3:f0:11:22:33", b"\x00" * 5):
        with pytest.raises(ValueError):
            mac_bytes(bad)


@pytest.mark.parametrize(
    ("mac", "randomized", "local", "multicast"),
    [
        ("00:1f:5b:ff:51:cb", False, False, False),  # Apple, burned-in
        ("da:a1:19:00:00:01", True, True, False),  # iOS private address style
        ("02:50:00:00:00:01", True, True, False),
        ("33:33:00:00:00:fb", False, True, True),  # IPv6 multicast: local+group, not randomised
        ("01:00:5e:00:00:fb", False, False, True),
        ("ff:ff:ff:ff:ff:ff", False, True, True),
    ],
)
def test_bits(mac: str, randomized: bool, local: bool, multicast: bool) -> None:
    assert (is_randomized(mac), is_locally_administered(mac), is_multicast(mac)) == (
        randomized,
        local,
        multicast,
    )


@given(st.binary(min_size=6, max_size=6))
def test_randomized_is_local_unicast(raw: bytes) -> None:
    assert is_randomized(raw) == (is_locally_administered(raw) and not is_multicast(raw))
    assert mac_bytes(mac_str(raw)) == raw
