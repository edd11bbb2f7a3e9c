"""The school morning: each device joins the LAN and does what its OS does in its first minutes.

One script per role (what Windows, macOS, iOS, Android, ChromeOS, Ubuntu, printers, cameras,
streamers, consoles, VoIP phones, a Raspberry Pi and a Sonos speaker say when they join), then
a "lesson" loop of browsing sessions to reach a realistic packet mix. Devices join 15 to 40 s
apart from 07:30:00; the randomised-MAC phone rejoins 20 minutes later with a new MAC.
"""

from __future__ import annotations

from pcaps import _apps as A
from pcaps import _tls as T
from pcaps._devices import (
    DEVICES,
    SSH_SERVER_IP,
    SSH_SERVER_MAC,
    UA_ANDROID_PROBE,
    UA_CHROME_ANDROID,
    UA_CHROME_WIN,
    UA_CHROMEOS,
    UA_EDGE_WIN,
    UA_FIREFOX_LINUX,
    UA_SAFARI_IOS,
    UA_SAFARI_IPAD,
    UA_SAFARI_MAC,
    Device,
)
from pcaps._lan import Lan
from pcaps._wire import SERVER, Cursor, Host, Trace

SEED = 20260907


def _windows(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    rng = lan.rng
    for suffix, group in ((0x00, False), (0x00, True), (0x20, False)):
        name = "ECOLE" if group else d.hostname
        lan.nbns(cur, h, A.nbns_registration(rng.getrandbits(16), name, suffix, d.ip, group))
    lan.llmnr(cur, h, "wpad")
    lan.nbns(cur, h, A.nbns_query(rng.getrandbits(16), "WPAD", 0x00))
    lan.dns(cur, h, "www.msftconnecttest.com")
    lan.http(cur, h, "www.msftconnecttest.com", "/connecttest.txt", "Microsoft NCSI", b"Microsoft Connect Test")
    lan.ssdp(cur, h, A.ssdp_msearch("urn:dial-multiscreen-org:service:dial:1",
                                    "Google Chrome/131.0.6778.86 Windows"), sport=50123)  # fmt: skip
    lan.dns(cur, h, "login.microsoftonline.com")
    lan.tls(cur, h, "login.microsoftonline.com", T.schannel_hello(rng, "login.microsoftonline.com"))
    lan.dns(cur, h, "settings-win.data.microsoft.com")
    lan.tls(cur, h, "settings-win.data.microsoft.com", T.schannel_hello(rng, "settings-win.data.microsoft.com"))
    ua = UA_CHROME_WIN if d.key == "win11_laptop" else UA_EDGE_WIN
    lan.dns(cur, h, "ent.ecole.example")
    lan.http(cur, h, "ent.ecole.example", "/", ua, b"<html>ENT</html>", "301 Moved Permanently")
    lan.dns(cur, h, "classroom.google.com")
    lan.tls(cur, h, "classroom.google.com", T.chrome_hello(rng, "classroom.google.com", pq=True), rounds=4)


def _apple(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    rng = lan.rng
    lan.mdns(cur, h, A.mdns_query([("_companion-link._tcp.local", "PTR"), ("_airplay._tcp.local", "PTR")]))
    inst = d.hostname.replace("-", " ")
    lan.mdns(cur, h, A.mdns_service(inst, "_companion-link._tcp", d.hostname, 49153,
                                    ["rpBA=4C:21:D0:8A:3F:E2", "rpVr=510.12.1", "rpFl=0x20000"], d.ip))  # fmt: skip
    lan.dns(cur, h, "captive.apple.com")
    lan.http(cur, h, "captive.apple.com", "/hotspot-detect.html", "CaptiveNetworkSupport-491.0.1 wispr",
             b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")  # fmt: skip
    for sni in ("gateway.icloud.com", "www.apple.com"):
        lan.dns(cur, h, sni)
        lan.tls(cur, h, sni, T.safari_hello(rng, sni))
    ua = {"macos": UA_SAFARI_MAC, "ios": UA_SAFARI_IPAD if d.key == "ipad" else UA_SAFARI_IOS}[d.role]
    lan.dns(cur, h, "ent.ecole.example")
    lan.http(cur, h, "ent.ecole.example", "/", ua, b"<html>ENT</html>", "301 Moved Permanently")


def _android(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    rng = lan.rng
    lan.dns(cur, h, "connectivitycheck.gstatic.com")
    lan.http(cur, h, "connectivitycheck.gstatic.com", "/generate_204", UA_ANDROID_PROBE, b"", "204 No Content")
    lan.dns(cur, h, "www.google.com")
    lan.tls(cur, h, "www.google.com", T.chrome_hello(rng, "www.google.com"))
    lan.dns(cur, h, "www.youtube.com")
    lan.quic(cur, h, "www.youtube.com")
    lan.dns(cur, h, "ent.ecole.example")
    lan.http(cur, h, "ent.ecole.example", "/", UA_CHROME_ANDROID, b"<html>ENT</html>", "301 Moved Permanently")


def _chromeos(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    rng = lan.rng
    lan.dns(cur, h, "clients3.google.com")
    lan.http(cur, h, "clients3.google.com", "/generate_204", UA_CHROMEOS, b"", "204 No Content")
    lan.mdns(cur, h, A.mdns_query([("_googlecast._tcp.local", "PTR")]))
    lan.dns(cur, h, "classroom.google.com")
    lan.tls(cur, h, "classroom.google.com", T.chrome_hello(rng, "classroom.google.com"), rounds=4)
    lan.dns(cur, h, "ent.ecole.example")
    lan.http(cur, h, "ent.ecole.example", "/", UA_CHROMEOS, b"<html>ENT</html>", "301 Moved Permanently")


def _ubuntu(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    rng = lan.rng
    lan.dns(cur, h, "connectivity-check.ubuntu.com")
    lan.http(cur, h, "connectivity-check.ubuntu.com", "/", "NetworkManager/1.46.0", b"", "204 No Content")
    lan.llmnr(cur, h, "srv-files")
    lan.mdns(cur, h, A.mdns_service(d.hostname, "_workstation._tcp", d.hostname, 9,
                                    [], d.ip))  # fmt: skip
    lan.arp_resolve(cur, h.mac, h.ip, SSH_SERVER_MAC, SSH_SERVER_IP)
    lan.ssh(cur, h, Host(SSH_SERVER_MAC, SSH_SERVER_IP, SERVER))
    lan.dns(cur, h, "fr.wikipedia.org")
    lan.tls(cur, h, "fr.wikipedia.org", T.firefox_hello(rng, "fr.wikipedia.org"), rounds=3)
    lan.http(cur, h, "ent.ecole.example", "/", UA_FIREFOX_LINUX, b"<html>ENT</html>", "301 Moved Permanently")


def _printer(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    rng = lan.rng
    lan.nbns(cur, h, A.nbns_registration(rng.getrandbits(16), d.hostname, 0x00, d.ip))
    txt = ["txtvers=1", "qtotal=1", "rp=ipp/print", "ty=HP LaserJet Pro M404dn",
           "product=(HP LaserJet Pro M404dn)", "pdl=application/pdf,image/urf,application/PCLm",
           "UUID=564e4333-4a39-3431-3132-a0d3c13a7f2c", "note=Salle 12"]  # fmt: skip
    inst = "HP LaserJet Pro M404dn (3A7F2C)"
    lan.mdns(cur, h, A.mdns_service(inst, "_ipp._tcp", d.hostname, 631, txt, d.ip))
    lan.mdns(cur, h, A.mdns_service(inst, "_printer._tcp", d.hostname, 515, txt[:6], d.ip))
    lan.ssdp(cur, h, A.ssdp_notify(
        "urn:schemas-upnp-org:device:Printer:1", "uuid:564e4333-4a39-3431-3132-a0d3c13a7f2c::"
        "urn:schemas-upnp-org:device:Printer:1", "HP HTTP Server; HP LaserJet Pro M404dn - W1A53A",
        f"http://{d.ip}:8080/DevMgmt/DiscoveryTree.xml"))  # fmt: skip


def _camera(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    lan.ssdp(cur, h, A.ssdp_notify(
        "upnp:rootdevice", "uuid:2ec3c5f2-0000-4000-8000-c056e38d14b2::upnp:rootdevice",
        "Linux/3.18.20, UPnP/1.0, Portable SDK for UPnP devices/1.6.6",
        f"http://{d.ip}:49152/rootDesc.xml"))  # fmt: skip
    lan.dns(cur, h, "dev.hik-connect.com")
    srv = lan.server("dev.hik-connect.com")
    from pcaps._wire import TcpConversation

    conv = TcpConversation(cur, h, srv, 40000 + lan.rng.randrange(1000), 7660, rtt_s=0.03)
    conv.open()
    for _ in range(3):
        conv.send(True, lan.rng.randbytes(96))
        conv.send(False, lan.rng.randbytes(48))
    conv.close()


def _chromecast(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    txt = ["id=7c1f3b2e9d4a4f6c8b0e1a2d3c4b5a69", "cd=4F2C1A7E0B3D5968", "rm=", "ve=05",
           "md=Chromecast", "ic=/setup/icon.png", "fn=Salle des profs", "ca=463365", "st=0",
           "bs=FA8FCA3A1B2C", "nf=1", "rs="]  # fmt: skip
    lan.mdns(cur, h, A.mdns_service("Chromecast-7c1f3b2e9d4a4f6c8b0e1a2d3c4b5a69", "_googlecast._tcp",
                                    "7c1f3b2e-9d4a-4f6c-8b0e-1a2d3c4b5a69", 8009, txt, d.ip))  # fmt: skip
    lan.ssdp(cur, h, A.ssdp_notify(
        "urn:dial-multiscreen-org:service:dial:1",
        "uuid:7c1f3b2e-9d4a-4f6c-8b0e-1a2d3c4b5a69::urn:dial-multiscreen-org:service:dial:1",
        "Linux/3.8.13+, UPnP/1.0, Portable SDK for UPnP devices/1.6.18",
        f"http://{d.ip}:8008/ssdp/device-desc.xml"))  # fmt: skip
    lan.dns(cur, h, "www.google.com")
    lan.tls(cur, h, "www.google.com", T.chrome_hello(lan.rng, "www.google.com"))


def _switch(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    lan.dns(cur, h, "ctest.cdn.nintendo.net")
    lan.http(cur, h, "ctest.cdn.nintendo.net", "/", None, b"ok")


def _yealink(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    lan.dns(cur, h, "rps.yealink.com")
    ua = f"Yealink SIP-T46U 108.86.0.90 {d.mac}"
    lan.http(cur, h, "rps.yealink.com", f"/{d.mac.replace(':', '')}.cfg", ua, b"#!version:1.0.0.1\n")


def _pi(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    lan.mdns(cur, h, A.mdns_service(f"{d.hostname} [{d.mac}]", "_workstation._tcp", d.hostname, 9, [], d.ip))
    lan.mdns(cur, h, A.mdns_service(d.hostname, "_ssh._tcp", d.hostname, 22, [], d.ip))
    lan.dns(cur, h, "archive.raspberrypi.com")
    lan.http(cur, h, "archive.raspberrypi.com", "/debian/dists/bookworm/InRelease",
             "Debian APT-HTTP/1.3 (2.6.1)", b"-----BEGIN PGP SIGNED MESSAGE-----\n")  # fmt: skip


def _sonos(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    server = "Linux UPnP/1.0 Sonos/80.1-55140 (ZPS33)"
    for nt in ("upnp:rootdevice", "urn:schemas-upnp-org:device:ZonePlayer:1"):
        lan.ssdp(cur, h, A.ssdp_notify(nt, f"uuid:RINCON_48A6B8903ED401400::{nt}", server,
                                       f"http://{d.ip}:1400/xml/device_description.xml"))  # fmt: skip
    lan.mdns(cur, h, A.mdns_service("Sonos-48A6B8903ED4", "_sonos._tcp", "Sonos-48A6B8903ED4", 1443,
                                    ["info=/api/v1/players/RINCON_48A6B8903ED401400/info", "vers=3",
                                     "protovers=1.40.0", "mdnsequipment=Sonos One SL"], d.ip))  # fmt: skip


def _pixel(lan: Lan, cur: Cursor, d: Device, h: Host) -> None:
    lan.dns(cur, h, "connectivitycheck.gstatic.com")
    lan.http(cur, h, "connectivitycheck.gstatic.com", "/generate_204", UA_ANDROID_PROBE, b"", "204 No Content")
    lan.dns(cur, h, "www.google.com")
    lan.tls(cur, h, "www.google.com", T.chrome_hello(lan.rng, "www.google.com"))


ROLES = {
    "windows": _windows, "macos": _apple, "ios": _apple, "android": _android, "chromeos": _chromeos,
    "ubuntu": _ubuntu, "printer": _printer, "camera": _camera, "chromecast": _chromecast,
    "switch": _switch, "yealink": _yealink, "pi": _pi, "sonos": _sonos, "pixel": _pixel,
}  # fmt: skip

BROWSERS = {"windows": "chrome", "macos": "safari", "ios": "safari", "android": "chrome",
            "chromeos": "chrome", "ubuntu": "firefox", "pixel": "chrome"}  # fmt: skip
LESSON_SITES = ("classroom.google.com", "ent.ecole.example", "fr.wikipedia.org", "teams.microsoft.com")


def join(lan: Lan, cur: Cursor, d: Device) -> Host:
    """DHCP, address announcement and gateway resolution, as every device does first."""
    h = lan.host(d)
    lan.dhcp_join(cur, d)
    lan.arp_announce(cur, d.mac, d.ip)
    lan.arp_resolve(cur, d.mac, d.ip, lan.gw.mac, lan.gw.ip)
    return h


def lesson(lan: Lan, cur: Cursor, d: Device, h: Host, sessions: int) -> None:
    """The first lesson: long-lived TLS sessions to the school's sites with small messages."""
    rng = lan.rng
    kind = BROWSERS.get(d.role)
    if kind is None:
        return
    for i in range(sessions):
        cur.wait(5 + rng.random() * 40)
        sni = rng.choice(LESSON_SITES)
        hello = {"chrome": T.chrome_hello, "safari": T.safari_hello, "firefox": T.firefox_hello}[kind](rng, sni)
        lan.tls(cur, h, sni, hello, rounds=rng.randrange(6, 12), rst=i == 1)


def neighbour_refresh(lan: Lan, trace: Trace, until_s: float) -> None:
    """Clients re-check the gateway's MAC (Linux/Android NUD probes, Windows and Apple ARP refresh)."""
    rng = lan.rng
    for d in DEVICES:
        t = 60.0 + rng.random() * 60
        while t < until_s:
            cur = trace.cursor(t)
            if (d.key == "pixel_random_a" and t > 1150) or (d.key == "pixel_random_b" and t < 1250):
                t += 90
                continue
            lan.arp_resolve(cur, d.mac, d.ip, lan.gw.mac, lan.gw.ip)
            t += 75 + rng.random() * 60


def school_morning(seed: int = SEED, lesson_sessions: int = 0) -> Trace:
    """The ~15-device school morning capture (Ethernet)."""
    trace = Trace(seed)
    lan = Lan(trace.rng)
    t = 0.5
    for d in DEVICES:
        if d.key == "pixel_random_b":
            continue
        cur = trace.cursor(t)
        h = join(lan, cur, d)
        ROLES[d.role](lan, cur, d, h)
        lesson(lan, cur, d, h, lesson_sessions)
        t += 15 + lan.rng.random() * 25
    # The randomised-MAC phone comes back after the break with a new MAC, same client id and name.
    back = next(d for d in DEVICES if d.key == "pixel_random_b")
    cur = trace.cursor(1200.0)
    h = join(lan, cur, back)
    _pixel(lan, cur, back, h)
    lesson(lan, cur, back, h, 2)
    neighbour_refresh(lan, trace, 1500.0)
    # The gateway refreshes its ARP cache for a few clients.
    cur = trace.cursor(900.0)
    for d in DEVICES[:6]:
        lan.arp_resolve(cur, lan.gw.mac, lan.gw.ip, d.mac, d.ip)
    return trace
