"""Test helper: every TLS/QUIC/SSH fingerprint our parsers find in one capture, keyed by flow.

Per TCP direction the reassembled stream goes to `parse_client_hello` / `parse_server_hello`
(TLS) or `parse_ssh_banner` + `parse_ssh_kexinit` (SSH); per UDP direction whose first datagram
is a QUIC Initial, the datagrams go to one `QuicInitialReader`. Keys are (src, sport, dst, dport)
of the sender.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from capture.errors import DecodeError
from capture.protocols.quic import QuicInitialReader, QuicServerInitialReader, looks_like_quic_initial
from capture.protocols.ssh import SshKexInit, parse_ssh_banner, parse_ssh_kexinit
from capture.protocols.tls import (
    ClientHello,
    ServerHello,
    looks_like_dtls_client_hello,
    looks_like_tls,
    parse_client_hello,
    parse_client_hellos,
    parse_dtls_client_hello,
    parse_server_hello,
    parse_server_hellos,
)
from signatures.hassh import hassh, hassh_server
from signatures.ja3 import ja3, ja3s
from signatures.ja4 import ja4
from tests.signatures.pcap_streams import Key, read_capture


@dataclass
class Found:
    # Per sender, every connection's hellos in order: [first, after a HelloRetryRequest].
    clients: dict[Key, list[list[ClientHello]]] = field(default_factory=dict)
    servers: dict[Key, list[list[ServerHello]]] = field(default_factory=dict)
    ssh: dict[Key, list[tuple[str, SshKexInit | None, bool]]] = field(default_factory=dict)  # banner, kex, client?
    errors: dict[Key, str] = field(default_factory=dict)
    udp: set[Key] = field(default_factory=set)  # keys of QUIC and DTLS flows

    def values(self, kind: str, first_only: bool = False) -> dict[Key, list[str]]:
        """Fingerprints `kind` per sender key, in stream order (two after a HelloRetryRequest)."""
        out: dict[Key, list[str]] = {}
        if kind in ("ja3", "ja3_string", "ja4", "ja4_r"):
            for key, conns in self.clients.items():
                for hello in (h for hellos in conns for h in (hellos[:1] if first_only else hellos)):
                    j3, j3h = ja3(hello)
                    j4, j4r = ja4(hello)
                    value = {"ja3": j3h, "ja3_string": j3, "ja4": j4, "ja4_r": j4r}[kind]
                    out.setdefault(key, []).append(value)
        elif kind == "ja4_2nd":  # the ClientHello that answers a HelloRetryRequest
            for key, conns in self.clients.items():
                for hellos in conns:
                    if len(hellos) > 1:
                        out.setdefault(key, []).append(ja4(hellos[1])[0])
        elif kind in ("ja3s", "ja3s_string"):
            for key, conns in self.servers.items():
                for sh in (h for shs in conns for h in (shs[:1] if first_only else shs)):
                    s, h = ja3s(sh)
                    out.setdefault(key, []).append(h if kind == "ja3s" else s)
        elif kind in ("hassh", "hassh_server"):
            for key, sessions in self.ssh.items():
                for _, kex, is_client in sessions:
                    if kex is not None and is_client == (kind == "hassh"):
                        out.setdefault(key, []).append((hassh(kex) if is_client else hassh_server(kex))[1])
        return out


def fingerprint_capture(path: Path) -> Found:
    cap = read_capture(path)
    found = Found()
    parsed: set[tuple[Key, int]] = set()
    for key, streams in cap.tcp.items():
        reverse = (key[2], key[3], key[0], key[1])
        initiator = cap.first_pkt[key] <= cap.first_pkt.get(reverse, 1 << 62)
        for index, stream in enumerate(streams):
            try:
                if looks_like_tls(stream):
                    parsed.add((key, index))
                    try:
                        if parse_client_hello(stream) is not None:
                            found.clients.setdefault(key, []).append(parse_client_hellos(stream))
                    except DecodeError as exc:
                        if exc.reason != "tls.not_client_hello":
                            raise
                        if parse_server_hello(stream) is not None:
                            found.servers.setdefault(key, []).append(parse_server_hellos(stream))
                elif b"SSH-" in stream[:1024]:
                    banner = parse_ssh_banner(stream, allow_preamble=not initiator)
                    if banner is not None:
                        kex = None if banner[0].startswith("SSH-1.5") else parse_ssh_kexinit(stream, banner[1])
                        found.ssh.setdefault(key, []).append((banner[0], kex, initiator))
            except DecodeError as exc:
                found.errors[key] = str(exc)
    for key in list(found.clients):
        # The server side of a TLS client (a CONNECT tunnel's server side starts with HTTP/1.1 200).
        reverse = (key[2], key[3], key[0], key[1])
        for index, stream in enumerate(cap.tcp.get(reverse, [])):
            if (reverse, index) in parsed:
                continue
            try:
                found.servers.setdefault(reverse, []).append(parse_server_hellos(stream))
            except DecodeError as exc:
                found.errors[reverse] = str(exc)
    for key, datagrams in cap.udp.items():
        reverse = (key[2], key[3], key[0], key[1])
        if looks_like_dtls_client_hello(datagrams[0]):
            try:
                found.clients[key] = [[parse_dtls_client_hello(datagrams[0])]]
                found.udp.add(key)
            except DecodeError as exc:
                found.errors[key] = str(exc)
            continue
        if not looks_like_quic_initial(datagrams[0]) or cap.first_pkt[key] > cap.first_pkt.get(reverse, 1 << 62):
            continue
        reader = QuicInitialReader()
        try:
            for datagram in datagrams:
                hello = reader.feed(datagram)
                if hello is not None:
                    found.clients[key] = [[hello]]
                    found.udp.add(key)
                    break
        except DecodeError as exc:
            found.errors[key] = str(exc)
        if reader.client_dcid is None or reverse not in cap.udp:
            continue
        server_reader = QuicServerInitialReader(reader.client_dcid)
        try:
            for datagram in cap.udp[reverse]:
                server = server_reader.feed(datagram)
                if server is not None:
                    found.servers[reverse] = [[server]]
                    found.udp.add(reverse)
                    break
        except DecodeError as exc:
            found.errors[reverse] = str(exc)
    return found
