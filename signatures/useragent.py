"""HTTP User-Agent -> browser, OS and device hints, through the maintained `ua-parser` package.

ua-parser (uap-core's regexes) names the browser, OS and device family; on top of it a short
table turns device and OS families, plus a few tokens uap-core does not classify (smart-TV
platforms, consoles), into the inventory's device types. Results are cached by string: a
device repeats its User-Agent on every request.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import ua_parser

MAX_UA_LEN = 1024  # longer User-Agents are cut: uap-core patterns anchor in the first few hundred bytes
CACHE_SIZE = 4096  # distinct User-Agents remembered; a school LAN sees a few hundred

# ua-parser's OS family names -> the names used across the inventory.
OS_ALIASES = {
    "Mac OS X": "macOS",
    "Mac OS": "macOS",
    "Chrome OS": "ChromeOS",
    "Chromecast": "ChromeOS",
    "iPadOS": "iOS",
    "Windows Phone": "Windows Phone",
    "Ubuntu": "Linux",
    "Debian": "Linux",
    "Fedora": "Linux",
    "Tizen": "Tizen",
    "webOS": "webOS",
}
_DEVICE_FAMILY_TYPES = {"iPad": "tablet", "iPhone": "phone", "iPod": "phone", "Kindle": "tablet"}
_OS_TYPES = {"ChromeOS": "chromebook", "Tizen": "tv/streamer", "webOS": "tv/streamer", "tvOS": "tv/streamer"}
# Whole-word tokens in the raw string (case-insensitive); the first hit gives the type.
_TOKEN_TYPES = (
    ("xbox", "game console"),
    ("playstation", "game console"),
    ("nintendo", "game console"),
    ("smart-tv", "tv/streamer"),
    ("smarttv", "tv/streamer"),
    ("hbbtv", "tv/streamer"),
    ("web0s", "tv/streamer"),
    ("roku", "tv/streamer"),
    ("appletv", "tv/streamer"),
    ("crkey", "tv/streamer"),  # Chromecast
    ("bravia", "tv/streamer"),
    ("aft[a-z]", "tv/streamer"),  # Amazon Fire TV model codes AFTB, AFTM, AFTS, ...
    ("cros", "chromebook"),
)
_TOKEN_RE = re.compile("|".join(rf"\b(?P<t{i}>{tok})\b" for i, (tok, _) in enumerate(_TOKEN_TYPES)), re.I)
# System agents that uap-core leaves without an OS but that only one OS sends.
_AGENT_OS = (("Microsoft-CryptoAPI/", "Windows"), ("Windows-Update-Agent", "Windows"), ("Microsoft NCSI", "Windows"))


# Versions browsers report whatever the real one is: Safari, Chrome and Firefox freeze macOS at
# 10.15(.7) since macOS 11, and "Windows NT 10.0" is sent by Windows 10 and 11 alike.
_FROZEN_VERSIONS: dict[tuple[str | None, str | None], str | None] = {
    ("macOS", "10.15"): None,
    ("Windows", "10"): "10/11",
}


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    browser: str | None
    browser_version: str | None
    os_family: str | None
    os_version: str | None
    device_family: str | None
    device_brand: str | None
    device_type: str | None
    bot: bool


def _version(*parts: str | None) -> str | None:
    out = [p for p in parts if p]
    return ".".join(out) if out else None


def _none_if_other(v: str | None) -> str | None:
    return None if not v or v == "Other" else v


@functools.lru_cache(maxsize=CACHE_SIZE)
def parse_user_agent(ua: str) -> UserAgentInfo:
    """Browser, OS and device of a User-Agent string; unknown parts are None."""
    ua = ua[:MAX_UA_LEN]
    r = ua_parser.parse(ua)
    browser = r.user_agent.family if r.user_agent else None
    bver = _version(r.user_agent.major, r.user_agent.minor) if r.user_agent else None
    os_family = _none_if_other(r.os.family if r.os else None)
    os_family = OS_ALIASES.get(os_family, os_family) if os_family else None
    if os_family is None:
        os_family = next((fam for prefix, fam in _AGENT_OS if ua.startswith(prefix)), None)
    os_version = _version(r.os.major, r.os.minor) if r.os and os_family else None
    os_version = _FROZEN_VERSIONS.get((os_family, os_version), os_version)
    dev_family = _none_if_other(r.device.family if r.device else None)
    brand = r.device.brand if r.device else None
    bot = dev_family == "Spider"
    return UserAgentInfo(
        browser=_none_if_other(browser),
        browser_version=bver if _none_if_other(browser) else None,
        os_family=os_family,
        os_version=os_version,
        device_family=dev_family,
        device_brand=brand,
        device_type=None if bot else _device_type(ua, os_family, dev_family),
        bot=bot,
    )


def _device_type(ua: str, os_family: str | None, dev_family: str | None) -> str | None:
    m = _TOKEN_RE.search(ua)
    if m is not None and m.lastgroup is not None:
        return _TOKEN_TYPES[int(m.lastgroup[1:])][1]
    low = ua.lower()
    if dev_family in _DEVICE_FAMILY_TYPES:
        return _DEVICE_FAMILY_TYPES[dev_family]
    if os_family in _OS_TYPES:
        return _OS_TYPES[os_family]
    if os_family == "iOS":
        return "tablet" if "ipad" in low else "phone"
    if os_family == "Android":
        # Android's compatibility definition: phones send "Mobile", tablets leave it out.
        return "phone" if "mobile" in low else "tablet"
    return None
