"""Device inventory: one entry per MAC, built from observation events, explained by its evidence.

`Inventory.observe(event, now)` attributes each observation to the device that sent it (the DHCP
client MAC for DHCP, the source MAC otherwise, and only when the source address is on the local
network, so a server's SYN+ACK seen through the router never lands on the router), records its
addresses, names, fingerprints and `Evidence`, and reclassifies the device when its evidence
changes (`agent.classify`, with hysteresis). IP-to-MAC bindings over time come from DHCP, ARP,
NDP and local traffic, and `mac_for(ip, now)` attributes a flow to a device. A randomised MAC
that comes back with a DHCP client-id, a DUID, or a hostname and DHCP fingerprint already seen
on another MAC is linked to it, with the basis shown. Every table is bounded; the least
recently seen device goes first. Pure: no I/O, no clock (`now` is passed in).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.classify import Classification, ClassifierConfig, classify
from signatures.dhcp_fp import DhcpDatabase, fingerprint_text
from signatures.evidence import (
    Evidence,
    dhcp_server_evidence,
    evidence_from_observation,
    evidence_from_vendor,
    names_from_observation,
)
from signatures.macaddr import is_multicast, is_randomized, mac_str

_ARP_REQUEST, _ARP_REPLY = 1, 2  # RFC 826 opcodes
_DHCP_REQUEST, _DHCP_ACK = 3, 5  # RFC 2132 §9.6 message types
_UNSPECIFIED = frozenset(("0.0.0.0", "::", ""))
_FP_KEYS = ("ja4", "ja3", "ja3s", "hassh", "hassh_server", "dhcp", "dhcp6", "p0f", "tcp_syn")
# Names too common to identify one device (defaults of millions of devices).
_GENERIC_NAMES = re.compile(r"^(iphone|ipad|android|localhost|galaxy|macbook(-?(air|pro))?|unknown|)$", re.I)


@dataclass(frozen=True, slots=True)
class InventoryConfig:
    max_devices: int = 10_000  # DESIGN budget: 150 MB RSS with 10k devices
    max_evidence: int = 32  # distinct (source, value) pairs kept per device; a busy laptop shows ~15
    max_ips: int = 16  # addresses per device (a dual-stack host has a few v4, v6 privacy addresses)
    max_names: int = 16
    max_fp_values: int = 6  # distinct values per fingerprint kind (browsers, apps and OS services differ)
    max_bindings: int = 65_536  # IP addresses tracked for flow attribution
    max_bindings_per_ip: int = 4  # successive holders of one address remembered
    binding_max_age: float = 86_400.0  # a binding unseen for a day is stale (typical DHCP lease <= 1 day)
    local_networks: tuple[str, ...] = ()  # extra networks counted as local besides private/link-local
    confidence_step: float = 0.05  # confidence changes smaller than this are not a change worth emitting
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)


class _Binding:
    __slots__ = ("first", "last", "mac", "source")

    def __init__(self, mac: str, now: float, source: str) -> None:
        self.mac, self.first, self.last, self.source = mac, now, now, source


class _Record:
    __slots__ = ("count", "ev", "last_seen")

    def __init__(self, ev: Evidence) -> None:
        self.ev, self.count, self.last_seen = ev, 1, ev.last_seen


class _Device:
    __slots__ = (
        "changed",
        "classification",
        "dirty",
        "evidence",
        "fingerprints",
        "first_seen",
        "ips",
        "last_seen",
        "linked",
        "mac",
        "names",
        "randomized",
        "vendor",
    )

    def __init__(self, mac: str, now: float, vendor: str | None) -> None:
        self.mac = mac
        self.vendor = vendor
        self.randomized = is_randomized(mac)
        self.first_seen = self.last_seen = now
        self.ips: dict[str, float] = {}
        self.names: dict[str, list[Any]] = {}  # name -> [source, first_seen, last_seen]
        self.evidence: dict[tuple[str, str, str], _Record] = {}
        self.fingerprints: dict[str, list[str]] = {}
        self.classification = Classification()
        self.linked: dict[str, Any] | None = None
        self.changed = 0
        self.dirty = False  # repeats changed evidence counts since the last classification


# Address space that is never routed on the internet: RFC 1918 private, RFC 6598 shared (carrier and
# mesh NAT), RFC 3927 / RFC 4291 link-local, RFC 4193 unique local. Documentation ranges are not
# here: fixtures use them for both sides, so their LAN is learnt from DHCP, ARP and NDP bindings.
_LOCAL_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fe80::/10",
              "fc00::/7")
)  # fmt: skip


@functools.lru_cache(maxsize=65_536)
def _is_private(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in _LOCAL_NETS)


class Inventory:
    """Devices keyed by MAC, IP bindings, and identity links between MACs."""

    def __init__(
        self,
        config: InventoryConfig | None = None,
        dhcp_db: DhcpDatabase | None = None,
        vendor_lookup: Callable[[str], str | None] | None = None,
    ) -> None:
        self.config = config or InventoryConfig()
        self._dhcp_db = dhcp_db
        self._vendor = vendor_lookup
        self._devices: OrderedDict[str, _Device] = OrderedDict()
        self._bindings: OrderedDict[str, list[_Binding]] = OrderedDict()
        self._identities: OrderedDict[str, str] = OrderedDict()  # identity key -> latest MAC
        self._links_to: dict[str, set[str]] = {}  # MAC -> MACs linked to it by hostname+fingerprint
        # NetBIOS names registered by more than one MAC are workgroup/domain names, not device names.
        self._nbns_names: OrderedDict[str, set[str]] = OrderedDict()
        self._local = tuple(ipaddress.ip_network(n, strict=False) for n in self.config.local_networks)
        self._local_cache: dict[str, bool] = {}  # address text -> is_local (the answer never changes)
        self._seq = 0
        self.evicted = 0

    # ------------------------------------------------------------ bindings

    def bind(self, ip: str, mac: str, now: float, source: str) -> None:
        """Record that `ip` was used by `mac` at `now` (from dhcp, arp, ndp or traffic)."""
        if ip in _UNSPECIFIED or not mac:
            return
        holders = self._bindings.get(ip)
        if holders is None:
            holders = self._bindings[ip] = []
            if len(self._bindings) > self.config.max_bindings:
                self._bindings.popitem(last=False)
        else:
            self._bindings.move_to_end(ip)
        last = holders[-1] if holders else None
        if last is not None and last.mac == mac:
            last.last = max(last.last, now)
            if source != "traffic":
                last.source = source
            return
        holders.append(_Binding(mac, now, source))
        del holders[: -self.config.max_bindings_per_ip]

    def mac_for(self, ip: str, now: float) -> str | None:
        """The MAC holding `ip` at time `now`, or None when unknown or stale."""
        best: _Binding | None = None
        for b in self._bindings.get(ip, ()):
            if b.first <= now and (best is None or b.first >= best.first):
                best = b
        if best is None or now - best.last > self.config.binding_max_age:
            return None
        return best.mac

    def is_local(self, ip: str) -> bool:
        """Private, link-local, shared or configured local address (bound addresses are checked apart)."""
        known = self._local_cache.get(ip)
        if known is not None:
            return known
        local = _is_private(ip)
        if not local and self._local:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                return False
            local = any(addr in n for n in self._local)
        if len(self._local_cache) >= 65536:
            self._local_cache.clear()
        self._local_cache[ip] = local
        return local

    # ------------------------------------------------------------ observations

    def observe(self, event: Mapping[str, Any], now: float) -> None:
        """Take one observation event (docs/events.md) into the inventory."""
        kind = event.get("type")
        if kind == "arp":
            self._arp(event, now)
            return
        if kind == "ndp":
            self._ndp(event, now)
            return
        mac = (event.get("client_mac") if kind == "dhcp" else None) or event.get("src_mac")
        if not mac or is_multicast(mac):
            return
        src = event.get("src") or ""
        if kind == "dhcp":
            self._dhcp_bindings(event, mac, now)
            if event.get("msg_type") not in (1, 3, 4, 7, 8):
                if event.get("msg_type") == _DHCP_ACK:
                    self._device(mac, now)
                self._dhcp_server(event, now)
                return
        elif src not in _UNSPECIFIED and not self.is_local(src) and self.mac_for(src, now) != mac:
            return  # a remote host seen through the router: not this MAC's own traffic
        dev = self._device(mac, now)
        changed = False
        if src not in _UNSPECIFIED and (kind != "dhcp" or self.is_local(src)):
            self.bind(src, mac, now, "traffic")
            changed |= self._add_ip(dev, src, now)
        for name, source in names_from_observation(event):
            if source == "nbns" and self._shared_nbns(name, dev.mac):
                continue
            changed |= self._add_name(dev, name, source, now)
        changed |= self._fingerprints(dev, event)
        evidence = evidence_from_observation(event, self._dhcp_db)
        if evidence and self._add_evidence(dev, evidence):
            changed |= self._reclassify(dev)
        changed |= self._link(dev, event, now)
        if changed:
            self._touch(dev)

    def _arp(self, event: Mapping[str, Any], now: float) -> None:
        mac, ip = event.get("sender_mac") or "", event.get("sender_ip") or ""
        if not mac or is_multicast(mac) or event.get("op") not in (_ARP_REQUEST, _ARP_REPLY):
            return
        dev = self._device(mac, now)
        if ip not in _UNSPECIFIED:  # 0.0.0.0 is an ARP probe (RFC 5227), not a claim
            self.bind(ip, mac, now, "arp")
            if self._add_ip(dev, ip, now):
                self._touch(dev)

    def _ndp(self, event: Mapping[str, Any], now: float) -> None:
        kind = event.get("ndp_type") or event.get("type")
        lladdr = event.get("lladdr") or event.get("src_mac") or ""
        if kind == "na":
            ip = event.get("target") or ""
        elif kind in ("ns", "rs", "ra"):
            ip = event.get("src") or ""
            lladdr = event.get("lladdr") or ""  # without the option, the source MAC may be a proxy
        else:
            return
        if not lladdr or is_multicast(lladdr) or ip in _UNSPECIFIED:
            return
        dev = self._device(lladdr, now)
        self.bind(ip, lladdr, now, "ndp")
        if self._add_ip(dev, ip, now):
            self._touch(dev)

    def _dhcp_server(self, event: Mapping[str, Any], now: float) -> None:
        mac, src = event.get("src_mac") or "", event.get("src") or ""
        if not mac or is_multicast(mac) or src in _UNSPECIFIED:
            return  # a DHCP server (or the relay forwarding for it) is on the link: no locality check
        dev = self._device(mac, now)
        changed = self._add_ip(dev, src, now)
        self.bind(src, mac, now, "traffic")
        if self._add_evidence(dev, dhcp_server_evidence(event)):
            changed |= self._reclassify(dev)
        if changed:
            self._touch(dev)

    def _dhcp_bindings(self, event: Mapping[str, Any], mac: str, now: float) -> None:
        msg = event.get("msg_type")
        if msg == _DHCP_ACK and event.get("yiaddr"):
            self.bind(event["yiaddr"], mac, now, "dhcp")
            dev = self._device(mac, now)
            if self._add_ip(dev, event["yiaddr"], now):
                self._touch(dev)
        elif msg == _DHCP_REQUEST and event.get("requested_ip"):
            self.bind(event["requested_ip"], mac, now, "dhcp_request")
        if event.get("ciaddr") and msg in (_DHCP_REQUEST, 8):
            self.bind(event["ciaddr"], mac, now, "dhcp")

    # ------------------------------------------------------------ device state

    def _device(self, mac: str, now: float) -> _Device:
        mac = mac_str(mac)
        dev = self._devices.get(mac)
        if dev is not None:
            if mac in self._links_to and now > dev.last_seen:
                self._unlink_overlapping(mac, now)
            dev.last_seen = max(dev.last_seen, now)
            self._devices.move_to_end(mac)
            return dev
        vendor = None if is_randomized(mac) else self._lookup_vendor(mac)
        dev = self._devices[mac] = _Device(mac, now, vendor)
        if vendor:
            self._add_evidence(dev, evidence_from_vendor(vendor, now))
            self._reclassify(dev)
        self._touch(dev)
        while len(self._devices) > self.config.max_devices:
            self._devices.popitem(last=False)
            self.evicted += 1
        return dev

    def _lookup_vendor(self, mac: str) -> str | None:
        if self._vendor is None:
            from signatures.oui import vendor

            self._vendor = vendor
        return self._vendor(mac)

    def _touch(self, dev: _Device) -> None:
        self._seq += 1
        dev.changed = self._seq

    def _add_ip(self, dev: _Device, ip: str, now: float) -> bool:
        new = ip not in dev.ips
        dev.ips[ip] = now
        if new and len(dev.ips) > self.config.max_ips:
            del dev.ips[min(dev.ips, key=dev.ips.__getitem__)]
        return new

    def _add_name(self, dev: _Device, name: str, source: str, now: float) -> bool:
        name = name[:255]
        entry = dev.names.get(name)
        if entry is not None:
            entry[2] = max(entry[2], now)
            return False
        if len(dev.names) >= self.config.max_names:
            return False
        dev.names[name] = [source, now, now]
        return True

    def _shared_nbns(self, name: str, mac: str) -> bool:
        """Record that `mac` registered `name`; True once two MACs did (and drop it from the first)."""
        key = name.upper()
        macs = self._nbns_names.setdefault(key, set())
        self._nbns_names.move_to_end(key)
        if len(self._nbns_names) > self.config.max_devices:
            self._nbns_names.popitem(last=False)
        if len(macs) < 4:  # enough to know it is shared
            macs.add(mac)
        if len(macs) < 2:
            return False
        for other in macs:
            dev = self._devices.get(other)
            if dev is not None:
                for n in [n for n, v in dev.names.items() if v[0] == "nbns" and n.upper() == key]:
                    del dev.names[n]
        return True

    def _fingerprints(self, dev: _Device, event: Mapping[str, Any]) -> bool:
        kind = event.get("type")
        values: list[tuple[str, str]] = []
        if kind == "tls_client":
            values = [(k, event[k]) for k in ("ja4", "ja3") if event.get(k)]
        elif kind == "tls_server" and event.get("ja3s"):
            values = [("ja3s", event["ja3s"])]
        elif kind == "ssh":
            values = [(k, event[k]) for k in ("hassh", "hassh_server") if event.get(k)]
        elif kind == "dhcp" and event.get("params"):
            vc = event.get("vendor_class")
            text = fingerprint_text(event["params"]) + (f";{vc}" if vc else "")
            values = [("dhcp", text)]
        elif kind == "dhcp6" and event.get("oro"):
            values = [("dhcp6", fingerprint_text(event["oro"]))]
        elif kind == "tcp_syn" and not event.get("synack"):
            if event.get("p0f"):
                values.append(("p0f", event["p0f"]))
            raw = f"{event.get('ttl')}:{event.get('window')}:{event.get('mss')}:{event.get('wscale')}:"
            values.append(("tcp_syn", raw + str(event.get("options") or "")))
        changed = False
        for key, value in values:
            have = dev.fingerprints.setdefault(key, [])
            if value not in have and len(have) < self.config.max_fp_values:
                have.append(str(value)[:200])
                changed = True
        return changed

    def _add_evidence(self, dev: _Device, evidence: list[Evidence]) -> bool:
        """Merge by (source, value, note); True when a new item arrived (repeats only mark the device dirty)."""
        cap = self.config.classifier.repeat_cap + 1
        changed = False
        for ev in evidence:
            rec = dev.evidence.get(ev.key)
            if rec is not None:
                rec.count += 1
                rec.last_seen = max(rec.last_seen, ev.last_seen)
                if rec.count <= cap:
                    dev.dirty = True
                continue
            if len(dev.evidence) >= self.config.max_evidence:
                weakest = min(dev.evidence.values(), key=lambda r: (r.ev.weight, r.last_seen))
                if weakest.ev.weight >= ev.weight:
                    continue
                del dev.evidence[weakest.ev.key]
            dev.evidence[ev.key] = _Record(ev)
            changed = True
        return changed

    def _reclassify(self, dev: _Device) -> bool:
        dev.dirty = False
        old = dev.classification
        new = classify(((r.ev, r.count) for r in dev.evidence.values()), old, self.config.classifier)
        dev.classification = new
        return (
            new.os_family.value != old.os_family.value
            or new.device_type.value != old.device_type.value
            or new.os_version != old.os_version
            or new.vendor.value != old.vendor.value
            or len(new.contradictions) != len(old.contradictions)
            or abs(new.confidence - old.confidence) >= self.config.confidence_step
        )

    # ------------------------------------------------------------ randomised MAC links

    def _identity_keys(self, dev: _Device, event: Mapping[str, Any]) -> list[tuple[str, str]]:
        kind = event.get("type")
        keys: list[tuple[str, str]] = []
        if kind == "dhcp" and event.get("msg_type") in (1, 3, 8):
            cid = (event.get("client_id") or "").lower().replace(":", "")
            if cid and cid != "01" + dev.mac.replace(":", ""):  # type 1 + own MAC says nothing new
                keys.append(("dhcp_client_id", cid))
            host = event.get("hostname") or ""
            if host and event.get("params") and not _GENERIC_NAMES.match(host):
                keys.append(("hostname+dhcp_fingerprint", f"{host.lower()}|{fingerprint_text(event['params'])}"))
        elif kind == "dhcp6" and event.get("duid"):
            keys.append(("dhcp6_duid", str(event["duid"]).lower()))
        return keys

    def _link(self, dev: _Device, event: Mapping[str, Any], now: float) -> bool:
        changed = False
        for basis, value in self._identity_keys(dev, event):
            key = f"{basis}:{value}"
            other_mac = self._identities.get(key)
            self._identities[key] = dev.mac
            self._identities.move_to_end(key)
            if len(self._identities) > 4 * self.config.max_devices:
                self._identities.popitem(last=False)
            if other_mac is None or other_mac == dev.mac or dev.linked is not None:
                continue
            other = self._devices.get(other_mac)
            if not (dev.randomized or (other is not None and other.randomized)):
                continue
            if basis == "hostname+dhcp_fingerprint" and other is not None and other.last_seen > dev.first_seen:
                continue  # both MACs active at once: two devices sharing a name, not one that changed MAC
            dev.linked = {"mac": other_mac, "basis": basis, "value": value[:200], "ts": now}
            if basis == "hostname+dhcp_fingerprint":
                self._links_to.setdefault(other_mac, set()).add(dev.mac)
            changed = True
        return changed

    def _unlink_overlapping(self, mac: str, now: float) -> None:
        """`mac` is active again after another MAC was linked to it by name: they are two devices."""
        for linker in self._links_to.pop(mac, ()):
            other = self._devices.get(linker)
            linked = other.linked if other is not None else None
            if other is not None and linked is not None and linked["mac"] == mac and linked["ts"] < now:
                other.linked = None
                self._touch(other)

    # ------------------------------------------------------------ output

    def __len__(self) -> int:
        return len(self._devices)

    def _refresh(self) -> None:
        """Reclassify devices whose evidence counts moved since their last classification."""
        for dev in self._devices.values():
            if dev.dirty and self._reclassify(dev):
                self._touch(dev)

    def device(self, mac: str) -> dict[str, Any] | None:
        """The `device` event of one MAC, or None."""
        dev = self._devices.get(mac_str(mac))
        if dev is not None and dev.dirty and self._reclassify(dev):
            self._touch(dev)
        return _device_event(dev) if dev is not None else None

    def devices(self) -> list[dict[str, Any]]:
        """`device` events for every device, ordered by MAC."""
        self._refresh()
        return [_device_event(d) for _, d in sorted(self._devices.items())]

    def changed_since(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        """Devices whose addresses, names, fingerprints, links or classification changed after `cursor`.

        Returns the events and the cursor to pass next time (start with 0). Last-seen updates alone
        are not changes.
        """
        self._refresh()
        out = [_device_event(d) for _, d in sorted(self._devices.items()) if d.changed > cursor]
        return out, self._seq


def _device_event(dev: _Device) -> dict[str, Any]:
    c = dev.classification
    evidence = sorted(dev.evidence.values(), key=lambda r: (-r.ev.weight, r.ev.source, r.ev.value))
    return {
        "type": "device",
        "ts": dev.last_seen,
        "mac": dev.mac,
        "vendor": dev.vendor or c.vendor.value,
        "randomized_mac": dev.randomized,
        "ips": sorted(dev.ips, key=_ip_sort_key),
        "names": [
            {"name": n, "source": v[0], "first_seen": v[1], "last_seen": v[2]} for n, v in sorted(dev.names.items())
        ],
        "os": {"family": c.os_family.value, "version": c.os_version, "confidence": c.os_family.confidence},
        "device_type": c.device_type.value or "unknown",
        "confidence": c.confidence,
        "evidence": [{**r.ev.as_dict(), "last_seen": r.last_seen, "count": r.count} for r in evidence],
        "fingerprints": {k: list(dev.fingerprints.get(k, ())) for k in _FP_KEYS if dev.fingerprints.get(k)},
        "first_seen": dev.first_seen,
        "last_seen": dev.last_seen,
        "contradictions": [x.as_dict() for x in c.contradictions],
        "linked": dict(dev.linked) if dev.linked else None,
    }


def _ip_sort_key(ip: str) -> tuple[int, str]:
    return (0 if ":" not in ip else 1, ip)
