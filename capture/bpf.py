"""Classic BPF programs for the kernel socket filter, compiled from tcpdump expressions.

The expression is compiled by libpcap: through scapy's `compile_filter` (ctypes on
libpcap, no interface and no root needed thanks to a "dead" handle), or, when libpcap
cannot be loaded that way, by running `tcpdump -ddd` and reading its decimal dump.
The program's accept returns are rewritten to the configured snap length, so the
kernel truncates frames itself. `attach_filter` installs the program with
SO_ATTACH_FILTER; sockets should be opened with protocol 0, filtered, then bound,
so that no unfiltered frame slips in between.

Note: the kernel strips 802.1Q tags before the filter runs, so a `vlan` expression
compiled for a dead handle tests bytes that are no longer there; filter on the inner
protocol instead.
"""

from __future__ import annotations

import ctypes
import shutil
import socket
import struct
import subprocess
import tempfile
from dataclasses import dataclass

from capture.frame import LINKTYPE_ETHERNET

# <asm-generic/socket.h>
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
# <linux/bpf_common.h>: the kernel refuses longer classic programs.
BPF_MAXINSNS = 4096
BPF_RET = 0x06
BPF_K = 0x00
_INSN = struct.Struct("=HBBI")  # struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }
# libpcap's own default snap length (pcap-int.h MAXIMUM_SNAPLEN).
MAXIMUM_SNAPLEN = 262144


class BpfError(ValueError):
    """A filter expression that cannot be compiled or attached."""

    def __init__(self, expression: str, message: str) -> None:
        self.expression = expression
        self.message = message
        super().__init__(f"BPF filter {expression!r}: {message}")


@dataclass(frozen=True, slots=True)
class BpfProgram:
    """A compiled classic BPF program: (code, jt, jf, k) instructions."""

    expression: str
    instructions: tuple[tuple[int, int, int, int], ...]

    def to_bytes(self) -> bytes:
        """The program as an array of `struct sock_filter`."""
        pack = _INSN.pack
        return b"".join(pack(*insn) for insn in self.instructions)


def compile_bpf(expression: str, snaplen: int = MAXIMUM_SNAPLEN, linktype: int = LINKTYPE_ETHERNET) -> BpfProgram:
    """Compile a tcpdump-style expression; accepting returns are set to `snaplen`."""
    if not 0 < snaplen <= MAXIMUM_SNAPLEN:
        raise BpfError(expression, f"snaplen {snaplen} outside 1..{MAXIMUM_SNAPLEN}")
    try:
        raw = _compile_with_scapy(expression, linktype)
    except ImportError:
        raw = _compile_with_tcpdump(expression, linktype)
    if not raw:
        raise BpfError(expression, "compiler produced an empty program")
    if len(raw) > BPF_MAXINSNS:
        raise BpfError(expression, f"{len(raw)} instructions, the kernel accepts at most {BPF_MAXINSNS}")
    insns = tuple((code, jt, jf, snaplen if code == BPF_RET | BPF_K and k != 0 else k) for code, jt, jf, k in raw)
    return BpfProgram(expression, insns)


def _compile_with_scapy(expression: str, linktype: int) -> list[tuple[int, int, int, int]]:
    try:
        from scapy.arch.common import compile_filter
        from scapy.error import Scapy_Exception
    except OSError as exc:  # pragma: no cover - depends on the host's libpcap
        raise ImportError(str(exc)) from exc
    try:
        prog = compile_filter(expression, linktype=linktype)
    except Scapy_Exception as exc:
        raise BpfError(expression, str(exc)) from exc
    count = int(prog.bf_len)
    blob = ctypes.string_at(prog.bf_insns, count * _INSN.size)
    return [_INSN.unpack_from(blob, i * _INSN.size) for i in range(count)]


def _compile_with_tcpdump(expression: str, linktype: int) -> list[tuple[int, int, int, int]]:
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        raise BpfError(expression, "neither libpcap (through scapy) nor tcpdump is available to compile it")
    # tcpdump compiles for the link type of the file it reads: a bare pcap header (no
    # packets) with LINKTYPE_ETHERNET and libpcap's snap length needs neither root nor an interface.
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, MAXIMUM_SNAPLEN, linktype)
    with tempfile.NamedTemporaryFile(suffix=".pcap") as empty:
        empty.write(header)
        empty.flush()
        proc = subprocess.run(
            [tcpdump, "-ddd", "-r", empty.name, "--", expression],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("reading from file")]
        raise BpfError(expression, " ".join(errors).strip() or f"tcpdump exited with {proc.returncode}")
    return parse_ddd(expression, proc.stdout)


def parse_ddd(expression: str, text: str) -> list[tuple[int, int, int, int]]:
    """Parse `tcpdump -ddd` output: a count line, then `code jt jf k` per line."""
    lines = [line.split() for line in text.strip().splitlines()]
    try:
        count = int(lines[0][0])
        insns = [(int(a), int(b), int(c), int(d)) for a, b, c, d in lines[1:]]
    except (IndexError, ValueError) as exc:
        raise BpfError(expression, f"unreadable tcpdump -ddd output: {exc}") from exc
    if count != len(insns):
        raise BpfError(expression, f"tcpdump announced {count} instructions and gave {len(insns)}")
    return insns


def attach_filter(sock: socket.socket, program: BpfProgram) -> None:
    """Install `program` on `sock` with SO_ATTACH_FILTER (the kernel copies it)."""
    blob = ctypes.create_string_buffer(program.to_bytes())
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } with native padding.
    fprog = struct.pack("@HP", len(program.instructions), ctypes.addressof(blob))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        raise BpfError(program.expression, f"the kernel refused the program: {exc}") from exc
