"""MAC address helpers: parsing text or bytes, and the IEEE 802 address bits.

The two low bits of the first octet are defined by IEEE 802-2014 §8.2: bit 0 (I/G) marks a
group (multicast) address, bit 1 (U/L) a locally administered one. Phones and laptops that
randomise their MAC per network (iOS 14+, Android 10+, Windows 10+) set U/L and keep I/G clear.
"""

from __future__ import annotations

MAC_LEN = 6  # EUI-48 (IEEE 802-2014 §8.2)
_GROUP_BIT = 0x01
_LOCAL_BIT = 0x02
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# Text forms already parsed (every event names a MAC; a site has a few thousand), bounded.
_PARSED: dict[str, bytes] = {}
_PARSED_MAX = 65536


def mac_bytes(mac: bytes | str) -> bytes:
    """Six bytes from `aa:bb:cc:dd:ee:ff`, `aa-bb-...`, `aabb.ccdd.eeff`, bare hex, or bytes.

    Raises ValueError naming the value when it is not a 48-bit address.
    """
    if isinstance(mac, bytes | bytearray):
        if len(mac) != MAC_LEN:
            raise ValueError(f"MAC must be {MAC_LEN} bytes, got {len(mac)}")
        return bytes(mac)
    got = _PARSED.get(mac)
    if got is not None:
        return got
    digits = mac.strip().replace(":", "").replace("-", "").replace(".", "")
    if len(digits) != 2 * MAC_LEN or not _HEX_DIGITS.issuperset(digits):
        raise ValueError(f"not a MAC address: {mac!r}")
    got = bytes.fromhex(digits)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[mac] = got
    return got


def mac_str(mac: bytes | str) -> str:
    """Canonical lower-case `aa:bb:cc:dd:ee:ff` form."""
    if isinstance(mac, str) and len(mac) == 17 and mac[2::3] == ":::::" and mac in _PARSED and mac.islower():
        return mac  # parsed before, so 12 hex digits; colons where they belong; lower case
    return mac_bytes(mac).hex(":")


def is_multicast(mac: bytes | str) -> bool:
    """True for group addresses (I/G bit set), including broadcast."""
    return bool(mac_bytes(mac)[0] & _GROUP_BIT)


def is_locally_administered(mac: bytes | str) -> bool:
    """True when the U/L bit is set."""
    return bool(mac_bytes(mac)[0] & _LOCAL_BIT)


def is_randomized(mac: bytes | str) -> bool:
    """A unicast, locally administered address: what MAC randomisation produces."""
    first = mac_bytes(mac)[0]
    return bool(first & _LOCAL_BIT) and not first & _GROUP_BIT
