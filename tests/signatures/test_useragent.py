"""User-Agent hints: ua-parser families mapped to the inventory's OS names and device types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signatures.useragent import MAX_UA_LEN, parse_user_agent

CASES = [
    # (User-Agent, os_family, os_version prefix, device_type)
    ("Mozilla/5.0 (iPad; CPU OS 16_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.1 "
     "Mobile/15E148 Safari/604.1", "iOS", "16", "tablet"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.2 Mobile/15E148 Safari/604.1", "iOS", "17", "phone"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", "ChromeOS", "14541", "chromebook"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", "Windows", "10", None),
    ("Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Mobile Safari/537.36", "Android", "13", "phone"),
    ("Mozilla/5.0 (Linux; Android 12; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", "Android", "12", "tablet"),
    ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/538.1 (KHTML, like Gecko) Version/6.0 TV "
     "Safari/538.1", "Tizen", "6", "tv/streamer"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041", "Windows", "10", "game console"),
    ("Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)", None, None,
     "game console"),
    ("Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 "
     "NintendoBrowser/5.1.0.20393", None, None, "game console"),
    ("Roku/DVP-9.10 (519.10E04111A)", "Roku", "9", "tv/streamer"),
    ("Microsoft-CryptoAPI/10.0", "Windows", None, None),  # "cros" inside "Microsoft" is not ChromeOS
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Safari/605.1.15", "macOS", None, None),  # browsers freeze macOS at 10.15.7
    ("curl/7.88.1", None, None, None),
]  # fmt: skip


@pytest.mark.parametrize(("ua", "os_family", "os_version", "device_type"), CASES)
def test_hints(ua: str, os_family: str | None, os_version: str | None, device_type: str | None) -> None:
    info = parse_user_agent(ua)
    assert info.os_family == os_family
    if os_version is None:
        assert info.os_version is None or os_family is None
    else:
        assert info.os_version is not None and info.os_version.startswith(os_version)
    assert info.device_type == device_type
    assert not info.bot


def test_bot_has_no_device_type() -> None:
    info = parse_user_agent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert info.bot and info.device_type is None


@given(st.text(max_size=3 * MAX_UA_LEN))
def test_any_string_parses(ua: str) -> None:
    info = parse_user_agent(ua)
    assert info.device_type is None or isinstance(info.device_type, str)
