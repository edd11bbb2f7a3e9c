"""Active discovery for the live agent: the kernel neighbour table (ARP/NDP) as IP-to-MAC evidence,
and opt-in, rate-limited mDNS browsing with zeroconf feeding the inventory like passive mDNS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

log = logging.getLogger("veille.agent")

# Active mDNS browsing (opt-in): a round browses at most MDNS_MAX_TYPES service types and resolves at
# most MDNS_MAX_SERVICES instances, each step waiting MDNS_WAIT seconds (RFC 6762 6: responders answer
# within 20-120 ms, or up to 500 ms for shared records).
MDNS_MAX_TYPES: Final = 32
MDNS_MAX_SERVICES: Final = 128
MDNS_WAIT: Final = 3.0
# DNS RR types (RFC 1035, RFC 2782, RFC 3596).
_PTR, _TXT, _SRV, _A, _AAAA = 12, 16, 33, 1, 28
# Neighbour entries that bind an address (ip neigh states); INCOMPLETE/FAILED/NOARP do not.
_BINDING_STATES: Final = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"})


def captured_ifindexes(names: Iterable[str]) -> set[int]:
    """Current kernel indexes of the captured interfaces (absent ones are skipped)."""
    import socket

    out = set()
    for name in names:
        with contextlib.suppress(OSError):
            out.add(socket.if_nametoindex(name))
    return out


def neighbour_pairs(interfaces: Iterable[str]) -> list[tuple[str, str]]:
    """(ip, mac) of the kernel neighbour entries on the captured interfaces that bind an address."""
    from capture.netinfo import neighbours

    wanted = captured_ifindexes(interfaces)
    out = []
    for n in neighbours():
        first_octet = int(n.mac[:2], 16) if len(n.mac) >= 2 else 1
        if n.ifindex in wanted and n.mac != "00:00:00:00:00:00" and not first_octet & 1:
            if any(state in _BINDING_STATES for state in n.state.split("|")):
                out.append((n.ip, n.mac))
    return out


def _txt(properties: dict[bytes, bytes | None]) -> str:
    parts = []
    for key, value in list(properties.items())[:64]:
        k = key.decode("utf-8", "replace")
        text = k if value is None else f"{k}={value.decode('utf-8', 'replace')}"
        parts.append('"' + text.replace('"', "'") + '"')
    return " ".join(parts)


def mdns_observation(info: Any, address: str, local: str, now: float) -> dict[str, Any]:
    """A resolved zeroconf `ServiceInfo` as the `dns` observation a passive mDNS response gives."""
    name, type_ = info.name.rstrip("."), info.type.rstrip(".")
    server = (info.server or "").rstrip(".")
    answers: list[dict[str, Any]] = [{"name": type_, "type": _PTR, "ttl": info.other_ttl, "data": name}]
    if server:
        answers.append({"name": name, "type": _SRV, "ttl": info.host_ttl, "data": f"0 0 {info.port or 0} {server}"})
        rtype = _AAAA if ":" in address else _A
        answers.append({"name": server, "type": rtype, "ttl": info.host_ttl, "data": address})
    if info.properties:
        answers.append({"name": name, "type": _TXT, "ttl": info.other_ttl, "data": _txt(info.properties)})
    return {
        "type": "dns", "ts": now, "src_mac": None, "dst_mac": None, "src": address, "dst": local,
        "sport": 5353, "dport": 5353, "proto": "udp", "community_id": None, "pkt": 0, "proto_name": "mdns",
        "id": 0, "response": True, "query": None, "qtype": None, "queries": [], "rcode": 0,
        "answers": answers, "additionals": [], "active": True,
    }  # fmt: skip


class MdnsBrowser:
    """Opt-in active mDNS browsing with python-zeroconf on the captured interfaces' IPv4 addresses.

    Each round lists the service types on the link (DNS-SD enumeration, RFC 6763 9), browses them,
    resolves the instances, and hands each answer to `deliver` as a passive-looking observation.
    Rounds are `interval` seconds apart; a round is bounded by the MDNS_* caps.
    """

    def __init__(self, interfaces: list[str], deliver: Callable[[dict[str, Any]], None], interval: float) -> None:
        self.interfaces = interfaces
        self.deliver = deliver
        self.interval = interval
        self.rounds = 0
        self.resolved = 0

    def _addresses(self) -> list[str]:
        import ipaddress

        from capture.netinfo import list_interfaces

        wanted = set(self.interfaces)
        return [
            a
            for i in list_interfaces()
            if i.name in wanted
            for a in i.addresses
            if ipaddress.ip_address(a).version == 4
        ]

    async def run(self) -> None:
        """Browse forever, one round per interval."""
        while True:
            try:
                await self.browse_once()
            except (OSError, RuntimeError) as exc:
                log.warning("mDNS browsing failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def browse_once(self) -> int:
        """One bounded round; returns the number of services resolved."""
        from zeroconf import IPVersion, ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf, AsyncZeroconfServiceTypes

        addresses = await asyncio.to_thread(self._addresses)
        if not addresses:
            log.warning("mDNS browsing: no IPv4 address on %s, skipped", ",".join(self.interfaces))
            return 0
        self.rounds += 1
        aiozc = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
        found: dict[str, str] = {}

        def added(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
            if state_change is ServiceStateChange.Added and len(found) < MDNS_MAX_SERVICES:
                found[name] = service_type

        try:
            types = await AsyncZeroconfServiceTypes.async_find(aiozc=aiozc, timeout=MDNS_WAIT)
            types = tuple(types)[:MDNS_MAX_TYPES]
            if not types:
                return 0
            browser = AsyncServiceBrowser(aiozc.zeroconf, list(types), handlers=[added])
            await asyncio.sleep(MDNS_WAIT)
            await browser.async_cancel()
            infos = [AsyncServiceInfo(t, n) for n, t in found.items()]
            done = await asyncio.gather(*(i.async_request(aiozc.zeroconf, MDNS_WAIT * 1000) for i in infos))
            now = time.time()
            count = 0
            for info, ok in zip(infos, done, strict=True):
                if not ok:
                    continue
                count += 1
                for address in info.parsed_addresses(IPVersion.V4Only):
                    self.deliver(mdns_observation(info, address, addresses[0], now))
            self.resolved += count
            log.info("mDNS browsing round", extra={"types": len(types), "services": count})
            return count
        finally:
            await aiozc.async_close()


# Pseudonym -> value records are appended to the site-local map this often (blocking I/O, in a thread).
