"""The school LAN's devices: addresses, TCP stacks, DHCP option shapes, and their true identity.

DHCP option 55 / 60 / order per OS are public facts collected by fingerprint databases
(fingerbank.org device entries, the Zeek "known hosts"/DHCP docs, Satori's dhcp.xml) and visible
in any capture of those systems; each profile names its source family. The truth fields
(device_type, vendor, os) are what the golden inventory must conclude.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcaps._wire import ANDROID, APPLE, EMBEDDED, LINUX, WINDOWS, Stack

GATEWAY_IP = "192.0.2.1"
GATEWAY_MAC = "00:1b:54:0a:00:01"  # Cisco Systems (router, DHCP and DNS server of the site)
SSH_SERVER_IP = "192.0.2.10"
SSH_SERVER_MAC = "00:26:b9:5e:10:0a"  # Dell Inc. (file server, static address)
DOMAIN = "ecole.example"


@dataclass(frozen=True, slots=True)
class DhcpProfile:
    """What a DHCP client puts in DISCOVER/REQUEST, in its own option order."""

    order: tuple[int, ...]  # option codes in sending order (53 and 55 included)
    params: tuple[int, ...]  # option 55
    vendor_class: str = ""  # option 60
    client_id: str = "mac"  # "mac" (type 1 + MAC), "" (none) or hex bytes
    max_size: int = 0  # option 57
    lease: int = 0  # option 51 (Apple asks for 90 days)
    broadcast: bool = False
    source: str = ""


WIN11 = DhcpProfile(
    (53, 61, 50, 12, 60, 55),
    (1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252),
    "MSFT 5.0",
    source="fingerbank 'Windows 10/11' (DHCP kernel 10.0)",
)
MACOS = DhcpProfile(
    (53, 55, 57, 61, 50, 51, 12),
    (1, 121, 3, 6, 15, 108, 114, 119, 252, 95, 44, 46),
    max_size=1500,
    lease=7776000,
    source="fingerbank 'Mac OS X 14'",
)
IOS = DhcpProfile(
    (53, 55, 57, 61, 50, 51, 12),
    (1, 121, 3, 6, 15, 108, 114, 119, 252),
    max_size=1500,
    lease=7776000,
    source="fingerbank 'iOS 17'",
)
ANDROID14 = DhcpProfile(
    (53, 61, 50, 57, 60, 12, 55),
    (1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108),
    "android-dhcp-14",
    max_size=1500,
    source="AOSP DhcpPacket.java (REQUESTED_PARAMS) / fingerbank 'Android 14'",
)
ANDROID_TV12 = DhcpProfile(
    (53, 61, 50, 57, 60, 12, 55),
    (1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114),
    "android-dhcp-12",
    max_size=1500,
    source="AOSP DhcpPacket.java (Android 12) / fingerbank 'Google Chromecast'",
)
CHROMEOS = DhcpProfile(
    (53, 61, 57, 50, 55),
    (1, 121, 33, 3, 6, 12, 15, 26, 28, 42, 51, 54, 58, 59, 119),
    max_size=1500,
    source="fingerbank 'Chrome OS' (dhcpcd-derived client in shill)",
)
UBUNTU = DhcpProfile(
    (53, 50, 12, 55),
    (1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42),
    client_id="",
    source="ISC dhclient 4.4 default dhclient.conf on Debian/Ubuntu / fingerbank 'Ubuntu'",
)
HP_JETDIRECT = DhcpProfile(
    (53, 61, 50, 57, 12, 60, 55),
    (1, 3, 44, 6, 7, 12, 15, 22, 54, 58, 59, 69, 18, 144),
    "Hewlett-Packard JetDirect",
    max_size=576,
    source="fingerbank 'HP JetDirect Printer'",
)
UDHCPC_CAMERA = DhcpProfile(
    (53, 61, 50, 57, 60, 55),
    (1, 3, 6, 12, 15, 28, 42),
    "udhcp 1.20.2",
    max_size=576,
    broadcast=True,
    source="busybox udhcpc defaults / fingerbank 'Hikvision'",
)
NINTENDO = DhcpProfile(
    (53, 61, 50, 55),
    (1, 3, 6, 15, 28, 33),
    broadcast=True,
    source="fingerbank 'Nintendo Switch'",
)
YEALINK = DhcpProfile(
    (53, 61, 50, 57, 12, 60, 55),
    (1, 3, 6, 7, 12, 15, 28, 42, 43, 66, 67, 120, 125, 132, 150),
    "yealink",
    max_size=1500,
    source="fingerbank 'Yealink VoIP phone' (options 66/67/150 provisioning)",
)
DHCPCD_PI = DhcpProfile(
    (53, 61, 57, 50, 51, 12, 60, 55),
    (1, 121, 33, 3, 6, 12, 15, 26, 28, 42, 51, 54, 58, 59, 119),
    "dhcpcd-9.4.1:Linux-6.1.21-v8+:aarch64:BCM2835",
    client_id="ff320b5c7e000100012c5f1a80dca6320b5c7e",
    max_size=1472,
    lease=0,
    source="dhcpcd.conf(5) defaults, vendorclassid format dhcpcd-<ver>:<os>-<rel>:<machine>:<platform>",
)
SONOS = DhcpProfile(
    (53, 61, 50, 57, 12, 55),
    (1, 3, 6, 12, 15, 28, 42),
    max_size=576,
    source="fingerbank 'Sonos' (udhcp-style)",
)
# A phone whose Wi-Fi MAC is randomised per network join, while its client identifier is an
# RFC 4361 IAID+DUID that stays the same (as dhcpcd-style clients send): the link the inventory
# must make between the two MACs.
PIXEL_RANDOM = DhcpProfile(
    (53, 61, 50, 57, 60, 12, 55),
    (1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108),
    "android-dhcp-14",
    client_id="ff9a3c0e710004a1b2c3d4e5f60718293a4b5c6d7e8f90",
    max_size=1500,
    source="AOSP DhcpPacket.java (Android 14), stable RFC 4361 client id",
)


@dataclass(frozen=True, slots=True)
class Device:
    key: str
    mac: str
    ip: str
    hostname: str
    stack: Stack
    dhcp: DhcpProfile
    device_type: str
    vendor: str
    os: str
    os_version: str
    role: str  # which activity script the generator runs for it


DEVICES: tuple[Device, ...] = (
    Device("win11_laptop", "d8:9e:f3:4a:21:07", "192.0.2.101", "STAFF-LT-042", WINDOWS, WIN11,
           "laptop", "Dell Inc.", "Windows", "11", "windows"),
    Device("win11_desktop", "30:13:8b:6c:02:e1", "192.0.2.102", "CLASS-PC-07", WINDOWS, WIN11,
           "desktop", "HP Inc.", "Windows", "11", "windows"),
    Device("macbook", "f0:18:98:3b:7c:55", "192.0.2.103", "MacBook-Air-de-Claire", APPLE, MACOS,
           "laptop", "Apple, Inc.", "macOS", "14", "macos"),
    Device("iphone", "bc:d0:74:19:e2:8a", "192.0.2.104", "iPhone", APPLE, IOS,
           "phone", "Apple, Inc.", "iOS", "17", "ios"),
    Device("ipad", "a4:83:e7:52:0f:c3", "192.0.2.105", "iPad", APPLE, IOS,
           "tablet", "Apple, Inc.", "iPadOS", "17", "ios"),
    Device("android_phone", "d0:1b:49:7e:33:90", "192.0.2.106", "Galaxy-A54-5G", ANDROID, ANDROID14,
           "phone", "Samsung Electronics Co.,Ltd", "Android", "14", "android"),
    Device("chromebook", "d0:c6:37:1d:8e:44", "192.0.2.107", "", LINUX, CHROMEOS,
           "chromebook", "Intel Corporate", "ChromeOS", "", "chromeos"),
    Device("ubuntu_admin", "b0:7b:25:0e:91:d2", "192.0.2.108", "it-admin-ubuntu", LINUX, UBUNTU,
           "laptop", "Dell Inc.", "Linux", "Ubuntu 24.04", "ubuntu"),
    Device("hp_printer", "a0:d3:c1:3a:7f:2c", "192.0.2.109", "NPI3A7F2C", EMBEDDED, HP_JETDIRECT,
           "printer", "Hewlett Packard", "embedded", "", "printer"),
    Device("hik_camera", "c0:56:e3:8d:14:b2", "192.0.2.110", "", EMBEDDED, UDHCPC_CAMERA,
           "camera", "Hangzhou Hikvision Digital Technology Co.,Ltd.", "embedded Linux", "", "camera"),
    Device("chromecast", "54:60:09:c4:5a:1e", "192.0.2.111", "Chromecast", ANDROID, ANDROID_TV12,
           "tv/streamer", "Google, Inc.", "Android TV", "12", "chromecast"),
    Device("switch", "98:b6:e9:61:0d:2f", "192.0.2.112", "", EMBEDDED, NINTENDO,
           "game console", "Nintendo Co.,Ltd", "Nintendo Switch OS", "", "switch"),
    Device("yealink", "80:5e:c0:27:b4:61", "192.0.2.113", "SIP-T46U", EMBEDDED, YEALINK,
           "voip phone", "Yealink(Xiamen) Network Technology Co.,Ltd.", "embedded Linux", "", "yealink"),
    Device("raspberry_pi", "dc:a6:32:0b:5c:7e", "192.0.2.114", "raspberrypi", LINUX, DHCPCD_PI,
           "iot", "Raspberry Pi Trading Ltd", "Linux", "Raspberry Pi OS 12", "pi"),
    Device("sonos", "48:a6:b8:90:3e:d4", "192.0.2.115", "SonosZP", EMBEDDED, SONOS,
           "iot", "Sonos, Inc.", "embedded Linux", "", "sonos"),
    Device("pixel_random_a", "da:a1:19:5c:3e:01", "192.0.2.116", "Pixel-8", ANDROID, PIXEL_RANDOM,
           "phone", "", "Android", "14", "pixel"),
    Device("pixel_random_b", "7e:04:d2:88:6b:f3", "192.0.2.116", "Pixel-8", ANDROID, PIXEL_RANDOM,
           "phone", "", "Android", "14", "pixel"),
)  # fmt: skip

# Outside servers (documentation ranges) behind the gateway, by DNS name.
SERVERS: dict[str, str] = {
    "www.msftconnecttest.com": "198.51.100.10",
    "login.microsoftonline.com": "198.51.100.11",
    "teams.microsoft.com": "198.51.100.12",
    "settings-win.data.microsoft.com": "198.51.100.13",
    "captive.apple.com": "198.51.100.20",
    "www.apple.com": "198.51.100.21",
    "gateway.icloud.com": "198.51.100.22",
    "rps.yealink.com": "198.51.100.40",
    "ent.ecole.example": "198.51.100.50",
    "archive.raspberrypi.com": "198.51.100.60",
    "connectivitycheck.gstatic.com": "203.0.113.10",
    "www.google.com": "203.0.113.11",
    "classroom.google.com": "203.0.113.12",
    "clients3.google.com": "203.0.113.13",
    "www.youtube.com": "203.0.113.14",
    "fr.wikipedia.org": "203.0.113.20",
    "connectivity-check.ubuntu.com": "203.0.113.30",
    "ctest.cdn.nintendo.net": "203.0.113.40",
    "dev.hik-connect.com": "203.0.113.50",
}

UA_CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
UA_EDGE_WIN = UA_CHROME_WIN + " Edg/131.0.0.0"
UA_SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1"
)
UA_SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1"
)
UA_SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Safari/605.1.15"
)
UA_CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)
UA_CHROMEOS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
UA_FIREFOX_LINUX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
UA_ANDROID_PROBE = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.32 Safari/537.36"
)
