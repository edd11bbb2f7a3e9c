"""What names and advertised services say about a device: mDNS/DNS-SD, SSDP/UPnP, NBNS, hostnames.

Knowledge lives in tables: DNS-SD service types (IANA service-name registry, vendor protocol
docs), mDNS TXT keys that carry a model (`md=`, `model=`, `am=`, `ty=`, `product=`), UPnP device
and service URNs and SERVER tokens (UPnP Device Architecture 1.1 §1.1.2: `OS/version UPnP/1.x
product/version`), NetBIOS suffixes (MS-NBTE), and default hostnames that vendors and OS installers
give devices. Each lookup returns `Hint`s: what is suggested and how strongly (0-1). Regexes are
compiled once at import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NAME_LEN = 255  # DNS names (RFC 1035 §2.3.4); longer names are cut before matching


@dataclass(frozen=True, slots=True)
class Hint:
    """A suggestion from one piece of knowledge."""

    weight: float
    device_type: str | None = None
    os_family: str | None = None
    os_version: str | None = None
    vendor: str | None = None
    why: str = ""


# ---------------------------------------------------------------- mDNS / DNS-SD

MDNS_SERVICES: dict[str, Hint] = {
    "_airplay._tcp": Hint(0.35, "tv/streamer", why="AirPlay video receiver (Apple TV, smart TVs; Macs too)"),
    "_raop._tcp": Hint(0.2, "tv/streamer", why="AirPlay audio receiver (speakers, TVs, Macs)"),
    "_googlecast._tcp": Hint(0.6, "tv/streamer", why="Google Cast receiver"),
    "_ipp._tcp": Hint(0.7, "printer", why="IPP printer (RFC 8011)"),
    "_ipps._tcp": Hint(0.7, "printer", why="IPP over TLS printer"),
    "_printer._tcp": Hint(0.7, "printer", why="LPD printer"),
    "_pdl-datastream._tcp": Hint(0.7, "printer", why="raw port 9100 printer"),
    "_uscan._tcp": Hint(0.5, "printer", why="eSCL scanner (multifunction printer)"),
    "_companion-link._tcp": Hint(0.4, vendor="Apple", why="Apple companion link (iPhone, iPad, Mac, Apple TV)"),
    "_apple-mobdev2._tcp": Hint(0.6, os_family="iOS", vendor="Apple", why="iOS Wi-Fi sync"),
    "_hap._tcp": Hint(0.6, "iot", why="HomeKit accessory protocol"),
    "_hap._udp": Hint(0.6, "iot", why="HomeKit accessory over Thread"),
    "_matter._tcp": Hint(0.5, "iot", why="Matter operational node"),
    "_matterc._udp": Hint(0.5, "iot", why="Matter commissionable node"),
    "_sonos._tcp": Hint(0.8, "iot", vendor="Sonos", why="Sonos speaker"),
    "_spotify-connect._tcp": Hint(0.2, "iot", why="Spotify Connect target (speakers, TVs, consoles)"),
    "_amzn-wplay._tcp": Hint(0.6, "tv/streamer", vendor="Amazon", why="Fire TV"),
    "_androidtvremote2._tcp": Hint(0.7, "tv/streamer", os_family="Android", why="Android TV remote service"),
    "_axis-video._tcp": Hint(0.8, "camera", vendor="Axis", why="Axis network camera"),
    "_rtsp._tcp": Hint(0.3, "camera", why="RTSP stream (cameras)"),
    "_hue._tcp": Hint(0.8, "iot", vendor="Signify", why="Philips Hue bridge"),
    "_esphomelib._tcp": Hint(0.7, "iot", why="ESPHome device"),
    "_workstation._tcp": Hint(0.3, os_family="Linux", why="Avahi workstation record"),
    "_smb._tcp": Hint(0.1, why="SMB file sharing"),
}
_SERVICE_RE = re.compile(r"(_[A-Za-z0-9-]+\._(?:tcp|udp))(?:\.local\.?)?$", re.I)
_TXT_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')

# Apple model identifiers (in TXT `model=`, `am=`, `md=`) by prefix.
APPLE_MODELS = (
    ("MacBook", Hint(0.7, "laptop", "macOS", vendor="Apple", why="Apple laptop model")),
    ("iMac", Hint(0.7, "desktop", "macOS", vendor="Apple", why="Apple desktop model")),
    ("Macmini", Hint(0.7, "desktop", "macOS", vendor="Apple", why="Apple desktop model")),
    ("MacPro", Hint(0.7, "desktop", "macOS", vendor="Apple", why="Apple desktop model")),
    ("Mac1", Hint(0.5, "desktop", "macOS", vendor="Apple", why="Apple silicon Mac model (Studio, recent Mini)")),
    ("iPhone", Hint(0.7, "phone", "iOS", vendor="Apple", why="Apple phone model")),
    ("iPad", Hint(0.7, "tablet", "iOS", vendor="Apple", why="Apple tablet model")),
    ("AppleTV", Hint(0.8, "tv/streamer", "tvOS", vendor="Apple", why="Apple TV model")),
    ("AudioAccessory", Hint(0.8, "iot", vendor="Apple", why="HomePod model")),
    ("Xserve", Hint(0.7, "server", "macOS", vendor="Apple", why="Apple server model")),
)
_MODEL_KEYS = ("md", "model", "am", "product", "ty", "usb_mdl")
_PRINTER_MAKERS = ("HP", "Canon", "EPSON", "Brother", "Xerox", "Kyocera", "Lexmark", "RICOH", "Samsung", "OKI")


def parse_txt(data: str) -> dict[str, str]:
    """`"k=v" "k2=v2"` (the event form of TXT data) -> {k: v}; keys lower-cased, first one wins."""
    out: dict[str, str] = {}
    for m in _TXT_RE.finditer(data[: MAX_NAME_LEN * 4]):
        item = re.sub(r"\\(.)", r"\1", m.group(1))
        key, _, value = item.partition("=")
        out.setdefault(key.lower(), value)
    return out


def mdns_service_hint(name: str) -> tuple[str, Hint] | None:
    """(service type, hint) for a DNS-SD name such as `Kitchen._googlecast._tcp.local`."""
    labels = name[:MAX_NAME_LEN].rstrip(".").split(".")
    for i in range(len(labels) - 1):
        svc = f"{labels[i]}.{labels[i + 1]}".lower()
        if svc in MDNS_SERVICES:
            return svc, MDNS_SERVICES[svc]
    m = _SERVICE_RE.search(name[:MAX_NAME_LEN])
    if m and m.group(1).lower() in MDNS_SERVICES:
        return m.group(1).lower(), MDNS_SERVICES[m.group(1).lower()]
    return None


def model_hint(model: str) -> Hint | None:
    """What a model string from TXT or SSDP suggests (Apple identifiers, printers, casts)."""
    for prefix, hint in APPLE_MODELS:
        if model.startswith(prefix):
            return hint
    low = model.lower()
    if "chromecast" in low or "google tv" in low:
        return Hint(0.7, "tv/streamer", vendor="Google", why="Chromecast model")
    if "nest" in low or "google home" in low:
        return Hint(0.7, "iot", vendor="Google", why="Google smart speaker/display")
    for maker in _PRINTER_MAKERS:
        if low.startswith(maker.lower()) and any(w in low for w in ("print", "jet", "mfp", "laser", "series")):
            return Hint(0.7, "printer", vendor=maker, why="printer model")
    return None


def txt_hints(txt: dict[str, str]) -> list[tuple[str, Hint]]:
    """Hints from TXT keys that carry a model; `ty=` (printer make and model) implies a printer."""
    out: list[tuple[str, Hint]] = []
    for key in _MODEL_KEYS:
        value = txt.get(key)
        if not value:
            continue
        hint = model_hint(value)
        if hint is None and key in ("ty", "usb_mdl"):
            hint = Hint(0.6, "printer", why="IPP TXT ty= printer model")
        if hint is not None:
            out.append((f"{key}={value}", hint))
    return out


# ---------------------------------------------------------------- SSDP / UPnP

SSDP_TYPES: tuple[tuple[str, Hint], ...] = (
    ("roku:ecp", Hint(0.9, "tv/streamer", vendor="Roku", why="Roku external control protocol")),
    ("urn:dial-multiscreen-org:", Hint(0.6, "tv/streamer", why="DIAL second-screen receiver")),
    ("urn:samsung.com:", Hint(0.7, "tv/streamer", "Tizen", vendor="Samsung", why="Samsung TV service")),
    ("urn:lge-com:service:webos", Hint(0.8, "tv/streamer", "webOS", vendor="LG", why="LG webOS TV")),
    ("urn:schemas-sony-com:service:ScalarWebAPI", Hint(0.6, "tv/streamer", vendor="Sony", why="Sony TV API")),
    ("urn:schemas-upnp-org:device:ZonePlayer", Hint(0.8, "iot", vendor="Sonos", why="Sonos zone player")),
    ("urn:Belkin:device:", Hint(0.8, "iot", vendor="Belkin", why="Wemo device")),
    ("urn:schemas-upnp-org:device:MediaRenderer", Hint(0.4, "tv/streamer", why="UPnP media renderer")),
    ("urn:schemas-upnp-org:device:InternetGatewayDevice", Hint(0.8, "network equipment", why="UPnP IGD router")),
    ("urn:schemas-upnp-org:device:WANDevice", Hint(0.7, "network equipment", why="UPnP WAN device")),
    ("urn:schemas-upnp-org:device:WLANAccessPointDevice", Hint(0.7, "network equipment", why="UPnP access point")),
    ("urn:schemas-upnp-org:device:Printer", Hint(0.7, "printer", why="UPnP printer")),
    ("urn:schemas-upnp-org:device:MediaServer", Hint(0.2, "server", why="UPnP media server (NAS, PCs)")),
    ("urn:schemas-upnp-org:device:DigitalSecurityCamera", Hint(0.8, "camera", why="UPnP camera")),
)
# SERVER / USER-AGENT product tokens.
SSDP_PRODUCTS: tuple[tuple[re.Pattern[str], Hint], ...] = tuple(
    (re.compile(p, re.I), h)
    for p, h in (
        (r"\bRoku/", Hint(0.8, "tv/streamer", vendor="Roku", why="Roku SERVER token")),
        (r"\bSonos/", Hint(0.8, "iot", vendor="Sonos", why="Sonos SERVER token")),
        (r"\bIpBridge/", Hint(0.8, "iot", vendor="Signify", why="Philips Hue bridge SERVER token")),
        (r"Samsung UPnP SDK|\bSHP,", Hint(0.6, "tv/streamer", vendor="Samsung", why="Samsung TV SERVER token")),
        (r"\bWebOS/|\bLGE_DLNA", Hint(0.6, "tv/streamer", "webOS", vendor="LG", why="LG TV SERVER token")),
        (r"\bSynology/|\bQNAP", Hint(0.6, "server", "Linux", why="NAS SERVER token")),
        (r"\bMiniUPnPd/", Hint(0.4, "network equipment", why="router UPnP daemon")),
        (r"\bCrKey/|Chromecast", Hint(0.7, "tv/streamer", vendor="Google", why="Chromecast SERVER token")),
        (r"\bXbox\b", Hint(0.8, "game console", vendor="Microsoft", why="Xbox token")),
        (r"\bPlayStation\b|\bPS[345]\b", Hint(0.8, "game console", vendor="Sony", why="PlayStation token")),
    )
)
_SERVER_OS = re.compile(
    r"^\s*(?:(?P<win>Microsoft-Windows(?:-NT)?|Windows)/(?P<winver>[\d.]+)|(?P<linux>Linux)(?:/(?P<lver>[\w.-]+))?|"
    r"(?P<darwin>Darwin)/|(?P<android>Android)/(?P<aver>[\d.]+))",
    re.I,
)


def ssdp_type_hint(nt_or_st: str) -> Hint | None:
    """Hint for an NT/ST value advertised by the device itself (NOTIFY or M-SEARCH response)."""
    for prefix, hint in SSDP_TYPES:
        if nt_or_st.startswith(prefix):
            return hint
    return None


def ssdp_server_hints(server: str) -> list[Hint]:
    """Hints from a SERVER (or USER-AGENT) header: the OS token first, then product tokens."""
    out: list[Hint] = []
    m = _SERVER_OS.match(server[:MAX_NAME_LEN])
    if m:
        if m.group("win"):
            ver = m.group("winver")
            major = {"5.1": "XP", "6.1": "7", "6.2": "8", "6.3": "8.1"}.get(ver, ver.split(".")[0])
            out.append(Hint(0.4, os_family="Windows", os_version=major, why="UPnP SERVER OS token"))
        elif m.group("android"):
            out.append(Hint(0.4, os_family="Android", os_version=m.group("aver"), why="UPnP SERVER OS token"))
        elif m.group("darwin"):
            out.append(Hint(0.2, os_family="Darwin", vendor="Apple", why="UPnP SERVER OS token"))
        elif m.group("linux"):
            out.append(Hint(0.15, os_family="Linux", why="UPnP SERVER OS token"))
    out.extend(h for rx, h in SSDP_PRODUCTS if rx.search(server[:MAX_NAME_LEN]))
    return out


# ---------------------------------------------------------------- NetBIOS and hostnames

# NetBIOS name suffixes (MS-NBTE §2.2.1, and the well-known list in Microsoft KB 163409).
NBNS_SUFFIXES = {
    0x00: "workstation",
    0x03: "messenger",
    0x1B: "domain master browser",
    0x1C: "domain controllers",
    0x1D: "master browser",
    0x1E: "browser election",
    0x20: "file server",
}
NBNS_SUFFIX_HINTS = {0x1B: Hint(0.5, "server", "Windows", why="registers the domain master browser name")}
NBNS_SUFFIX_HINTS[0x1C] = Hint(0.7, "server", "Windows", why="registers the domain controllers group name")

HOSTNAME_PATTERNS: tuple[tuple[re.Pattern[str], Hint], ...] = tuple(
    (re.compile(p, re.I), h)
    for p, h in (
        (r"iPhone", Hint(0.6, "phone", "iOS", vendor="Apple", why="iOS default device name")),
        (r"iPad", Hint(0.6, "tablet", "iOS", vendor="Apple", why="iPadOS default device name")),
        (r"MacBook", Hint(0.6, "laptop", "macOS", vendor="Apple", why="macOS default computer name")),
        (r"\biMac\b|-iMac\b|^iMac", Hint(0.6, "desktop", "macOS", vendor="Apple", why="macOS default name")),
        (r"Mac-?mini", Hint(0.6, "desktop", "macOS", vendor="Apple", why="macOS default computer name")),
        (r"Apple-?TV", Hint(0.6, "tv/streamer", "tvOS", vendor="Apple", why="tvOS default name")),
        (r"^Galaxy-?Tab", Hint(0.5, "tablet", "Android", vendor="Samsung", why="Samsung tablet default name")),
        (r"^Galaxy-", Hint(0.5, "phone", "Android", vendor="Samsung", why="Samsung phone default name")),
        (r"^Pixel-", Hint(0.5, "phone", "Android", vendor="Google", why="Google Pixel default device name")),
        (r"^android-[0-9a-f]{8,16}$", Hint(0.5, os_family="Android", why="Android default DHCP hostname")),
        (r"^DESKTOP-[A-Z0-9]{7}$", Hint(0.5, "desktop", "Windows", why="Windows 10/11 default name, desktop chassis")),
        (r"^LAPTOP-[A-Z0-9]{8}$", Hint(0.5, "laptop", "Windows", why="Windows 10/11 default laptop name")),
        (r"^WIN-[A-Z0-9]{11}$", Hint(0.5, "server", "Windows", why="Windows Server default computer name")),
        (r"^HP[0-9A-F]{6}$", Hint(0.7, "printer", vendor="HP", why="HP printer default hostname (HP + MAC tail)")),
        (r"^NPI[0-9A-F]{6}$", Hint(0.7, "printer", vendor="HP", why="HP Jetdirect default hostname")),
        (r"^BR[WN][0-9A-F]{12}$", Hint(0.8, "printer", vendor="Brother", why="Brother printer default hostname")),
        (r"^EPSON[0-9A-F]{6}$", Hint(0.8, "printer", vendor="Epson", why="Epson printer default hostname")),
        (r"^SEP[0-9A-F]{12}$", Hint(0.8, "voip phone", vendor="Cisco", why="Cisco IP phone name (SEP + MAC)")),
        (r"^SIP-T\d", Hint(0.5, "voip phone", vendor="Yealink", why="Yealink phone default hostname")),
        (r"^Chromecast", Hint(0.7, "tv/streamer", vendor="Google", why="Chromecast default name")),
        (r"^Google-(Home|Nest)", Hint(0.7, "iot", vendor="Google", why="Google speaker default name")),
        (r"^Roku", Hint(0.7, "tv/streamer", vendor="Roku", why="Roku default name")),
        (r"^LGwebOSTV|^LG-webOS", Hint(0.7, "tv/streamer", "webOS", vendor="LG", why="LG TV default name")),
        (r"^PS[345]-", Hint(0.7, "game console", vendor="Sony", why="PlayStation default hostname")),
        (r"^XBOX", Hint(0.7, "game console", "Windows", vendor="Microsoft", why="Xbox default hostname")),
        (r"^Nintendo", Hint(0.6, "game console", vendor="Nintendo", why="Nintendo default hostname")),
        (r"^raspberrypi", Hint(0.6, "iot", "Linux", vendor="Raspberry Pi", why="Raspberry Pi OS default name")),
        (r"^ESP[_-][0-9A-F]{6}$", Hint(0.7, "iot", vendor="Espressif", why="ESP8266/ESP32 default hostname")),
        (r"^axis-[0-9a-f]{12}$", Hint(0.8, "camera", vendor="Axis", why="Axis camera default hostname")),
        (r"^SonosZP", Hint(0.7, "iot", vendor="Sonos", why="Sonos default hostname")),
        (r"^Kindle", Hint(0.6, "tablet", vendor="Amazon", why="Kindle default hostname")),
        (r"^(chromebook|chromeos)", Hint(0.5, "chromebook", "ChromeOS", why="Chromebook hostname")),
        # Naming conventions of organisations' IT (asset tags): weak, they are conventions, not defaults.
        (r"(^|[-_])(LT|LAP|NB)([-_]?\d|$)", Hint(0.3, "laptop", why="asset name convention for laptops")),
        (r"(^|[-_])(PC|DT|WS)([-_]?\d|$)", Hint(0.3, "desktop", why="asset name convention for desktops")),
    )
)


def hostname_hints(name: str) -> list[Hint]:
    """Hints from a device name (DHCP option 12/81, mDNS host, NBNS, LLMNR)."""
    name = name[:MAX_NAME_LEN].strip().rstrip(".")
    if name.lower().endswith(".local"):
        name = name[:-6]
    return [h for rx, h in HOSTNAME_PATTERNS if rx.search(name)]


# ---------------------------------------------------------------- MAC vendors with a typical device type

# Substrings of IEEE organisation names whose blocks go (almost) only into one kind of device.
OUI_VENDOR_TYPES: tuple[tuple[str, Hint], ...] = (
    ("Hikvision", Hint(0.5, "camera", why="camera maker's MAC block")),
    ("Dahua", Hint(0.5, "camera", why="camera maker's MAC block")),
    ("Axis Communications", Hint(0.5, "camera", why="camera maker's MAC block")),
    ("Roku", Hint(0.6, "tv/streamer", why="Roku MAC block")),
    ("Sonos", Hint(0.6, "iot", why="Sonos MAC block")),
    ("Espressif", Hint(0.5, "iot", why="ESP8266/ESP32 module MAC block")),
    ("Raspberry Pi", Hint(0.4, "iot", "Linux", why="Raspberry Pi MAC block")),
    ("Nintendo", Hint(0.6, "game console", why="Nintendo MAC block")),
    ("Sony Interactive Entertainment", Hint(0.6, "game console", why="PlayStation MAC block")),
    ("Polycom", Hint(0.6, "voip phone", why="Polycom MAC block")),
    ("Yealink", Hint(0.6, "voip phone", why="Yealink MAC block")),
    ("Juniper Networks", Hint(0.5, "network equipment", why="network vendor MAC block")),
    ("Cisco Systems", Hint(0.3, "network equipment", why="Cisco MAC block (routers, switches, APs; phones too)")),
    ("Ubiquiti", Hint(0.5, "network equipment", why="network vendor MAC block")),
    ("Aruba", Hint(0.5, "network equipment", why="network vendor MAC block")),
    ("Routerboard.com", Hint(0.5, "network equipment", why="MikroTik MAC block")),
    ("Brother Industries", Hint(0.5, "printer", why="printer maker's MAC block")),
    ("Seiko Epson", Hint(0.4, "printer", why="printer maker's MAC block")),
    ("Lexmark", Hint(0.5, "printer", why="printer maker's MAC block")),
)


def oui_vendor_hint(vendor: str) -> Hint | None:
    """Device-type hint for makers whose MAC blocks go into one kind of device."""
    for needle, hint in OUI_VENDOR_TYPES:
        if needle.lower() in vendor.lower():
            return hint
    return None
