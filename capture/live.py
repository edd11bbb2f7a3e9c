"""Live capture: AF_PACKET with a memory-mapped TPACKET_V3 ring, off the asyncio loop.

Each interface gets a packet socket opened with protocol 0, given the kernel BPF
filter, switched to TPACKET_V3 with a ring (PACKET_RX_RING, tpacket_req3), mapped,
put in promiscuous mode (PACKET_ADD_MEMBERSHIP) and only then bound to the interface,
so no unfiltered frame gets in. The ring is walked block by block with struct on the
mmap (tpacket_block_desc, tpacket3_hdr); each retired block becomes one list of
`Frame`s and is handed back to the kernel at once. The kernel strips 802.1Q tags into
tp_vlan_tci; they are put back into the frame bytes so decoders see the wire frame.
Where the ring cannot be set up, a plain packet socket read with recvmsg (timestamps
from SO_TIMESTAMPNS, VLAN from PACKET_AUXDATA) takes its place.

`LiveSource` runs one capture thread that polls every interface's socket, a link
watcher (to re-open an interface that was deleted and re-created) and a wake-up pipe.
Blocks go into a bounded queue; when it is full the block is dropped and counted, the
capture thread never waits on the consumer. Kernel drop counters (PACKET_STATISTICS)
are accumulated per interface and read with `stats()`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import mmap
import os
import queue
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from capture.bpf import MAXIMUM_SNAPLEN, BpfProgram, attach_filter, compile_bpf
from capture.errors import VeilleError
from capture.frame import LINKTYPE_ETHERNET, Frame
from capture.netinfo import LinkEvent, LinkWatcher

log = logging.getLogger(__name__)

# <linux/socket.h>, <linux/if_packet.h>, <linux/if_ether.h>
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
PACKET_VERSION = 10
PACKET_MR_PROMISC = 1
TPACKET_V3 = 2
ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1 << 0
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
# <asm-generic/socket.h>
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
# TPACKET_ALIGNMENT, and TPACKET3_HDRLEN = TPACKET_ALIGN(sizeof(tpacket3_hdr)) + sizeof(sockaddr_ll).
TPACKET_ALIGNMENT = 16
TPACKET3_HDRLEN = 48 + 20

# struct tpacket_req3: block_size, block_nr, frame_size, frame_nr, retire_blk_tov,
# sizeof_priv, feature_req_word
_REQ3 = struct.Struct("=7I")
# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1's
# block_status, num_pkts, offset_to_first_pkt
_BLOCK = struct.Struct("=5I")
_BLOCK_STATUS_OFFSET = 8
_STATUS = struct.Struct("=I")
# struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac, net, rxhash, vlan_tci, vlan_tpid
_HDR3 = struct.Struct("=6IHHIIH")
# struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
_AUX = struct.Struct("=3I4H")
_TIMESPEC = struct.Struct("=qq")
_VLAN_TAG = struct.Struct("!HH")
# struct packet_mreq: ifindex, type, alen, address[8]
_MREQ = struct.Struct("=iHH8s")


NO_SUCH_INTERFACE = "no such interface"


class LiveCaptureError(VeilleError):
    """An interface that cannot be captured on; names the interface and the step."""

    def __init__(self, iface: str, message: str) -> None:
        self.iface = iface
        self.message = message
        super().__init__(f"capture on {iface}: {message}")


class RingUnavailable(LiveCaptureError):
    """The kernel refused the TPACKET_V3 ring (old kernel, no memory): the plain socket may still work."""


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """Capture settings; the agent's [capture] section maps onto this."""

    bpf: str = ""
    snaplen: int = MAXIMUM_SNAPLEN
    promisc: bool = True
    ring: bool = True
    # 256 KiB blocks x 32 = an 8 MiB ring per interface: four times tcpdump's 2 MiB default buffer.
    block_size: int = 1 << 18
    block_count: int = 32
    frame_size: int = 2048
    timeout_ms: int = 100
    # Blocks waiting for the pipeline: at most 128 x 256 KiB = 32 MiB of frames, a quarter of a
    # second of a saturated 1 Gb/s link, within the 150 MB RSS budget of DESIGN.md.
    queue_blocks: int = 128
    # Frames gathered per block by the plain-socket fallback.
    fallback_batch: int = 256
    # Seconds between two "queue full" warnings (the counters keep every drop).
    drop_log_interval: float = 10.0
    # Start even when an interface does not exist yet (a USB NIC, a bridge made later) and open it
    # when it appears; by default a missing interface is an error at start.
    wait_for_interfaces: bool = False


def check_ring(block_size: int, block_count: int, frame_size: int, timeout_ms: int) -> list[tuple[str, str]]:
    """Problems with ring geometry as (key, message), following the kernel's packet_set_ring checks."""
    problems: list[tuple[str, str]] = []
    page = mmap.PAGESIZE
    if block_size <= 0 or block_size % page or block_size & (block_size - 1):
        problems.append(("block_size", f"must be a power of two multiple of the page size ({page})"))
    if block_count <= 0:
        problems.append(("block_count", "must be at least 1"))
    if frame_size < TPACKET3_HDRLEN or frame_size % TPACKET_ALIGNMENT:
        problems.append(("frame_size", f"must be a multiple of {TPACKET_ALIGNMENT} and at least {TPACKET3_HDRLEN}"))
    elif block_size > 0 and frame_size > block_size:
        problems.append(("frame_size", "must not exceed block_size"))
    if timeout_ms <= 0:
        problems.append(("timeout_ms", "must be at least 1"))
    return problems


@dataclass(slots=True)
class InterfaceStats:
    """Counters for one interface since the source opened (kernel counters accumulated)."""

    iface: str
    mode: str = "closed"
    frames: int = 0
    blocks: int = 0
    kernel_packets: int = 0
    kernel_drops: int = 0
    kernel_freezes: int = 0
    pipeline_drops: int = 0
    reopens: int = 0
    up: bool = False


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """A snapshot of every interface's counters."""

    interfaces: tuple[InterfaceStats, ...]

    @property
    def kernel_drops(self) -> int:
        return sum(i.kernel_drops for i in self.interfaces)

    @property
    def pipeline_drops(self) -> int:
        return sum(i.pipeline_drops for i in self.interfaces)

    @property
    def frames(self) -> int:
        return sum(i.frames for i in self.interfaces)


@dataclass(frozen=True, slots=True)
class Block:
    """Frames read together from one interface."""

    iface: str
    frames: list[Frame] = field(default_factory=list)


def _open_packet_socket(iface: str, program: BpfProgram | None) -> tuple[socket.socket, int]:
    try:
        ifindex = socket.if_nametoindex(iface)
    except OSError as exc:
        raise LiveCaptureError(iface, NO_SUCH_INTERFACE) from exc
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError as exc:
        raise LiveCaptureError(iface, "opening a packet socket needs CAP_NET_RAW") from exc
    if program is not None:
        try:
            attach_filter(sock, program)
        except ValueError as exc:
            sock.close()
            raise LiveCaptureError(iface, str(exc)) from exc
    return sock, ifindex


def _finish_open(sock: socket.socket, iface: str, ifindex: int, promisc: bool) -> None:
    try:
        if promisc:
            mreq = _MREQ.pack(ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        sock.bind((iface, ETH_P_ALL))
    except OSError as exc:
        sock.close()
        raise LiveCaptureError(iface, f"bind/promiscuous mode failed: {exc}") from exc
    sock.setblocking(False)


# Frame(...) goes through NamedTuple's Python-level __new__; tuple.__new__ builds the same
# object in C, about 40% faster per frame.
_new_tuple = tuple.__new__


def _with_vlan(data: bytes, tci: int, tpid: int) -> bytes:
    return data[:12] + _VLAN_TAG.pack(tpid, tci & 0xFFFF) + data[12:]


class RingCapture:
    """One interface read through a TPACKET_V3 ring."""

    mode = "ring"

    def __init__(self, iface: str, config: LiveConfig, program: BpfProgram | None) -> None:
        problems = check_ring(config.block_size, config.block_count, config.frame_size, config.timeout_ms)
        if problems:
            raise LiveCaptureError(iface, "; ".join(f"ring.{k}: {m}" for k, m in problems))
        self.iface = iface
        self.sock, self.ifindex = _open_packet_socket(iface, program)
        self._block_size = config.block_size
        self._block_count = config.block_count
        self._next = 0
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frames = (config.block_size // config.frame_size) * config.block_count
            req = _REQ3.pack(config.block_size, config.block_count, config.frame_size, frames, config.timeout_ms, 0, 0)
            self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            self._ring = mmap.mmap(
                self.sock.fileno(),
                config.block_size * config.block_count,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
        except OSError as exc:
            self.sock.close()
            raise RingUnavailable(iface, f"TPACKET_V3 ring unavailable: {exc}") from exc
        try:
            _finish_open(self.sock, iface, self.ifindex, config.promisc)
        except LiveCaptureError:
            self._ring.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_blocks(self) -> list[list[Frame]]:
        """Every block the kernel has retired, oldest first, each handed back to the kernel."""
        ring = self._ring
        blocks: list[list[Frame]] = []
        unpack_block = _BLOCK.unpack_from
        unpack_hdr = _HDR3.unpack_from
        release = _STATUS.pack_into
        make = _new_tuple
        for _ in range(self._block_count):
            base = self._next * self._block_size
            _version, _priv, status, num_pkts, first = unpack_block(ring, base)
            if not status & TP_STATUS_USER:
                break
            frames: list[Frame] = []
            append = frames.append
            pos = base + first
            for _ in range(num_pkts):
                nxt, sec, nsec, snap, _len, pstatus, mac, _net, _hash, tci, tpid = unpack_hdr(ring, pos)
                start = pos + mac
                data = ring[start : start + snap]
                if pstatus & TP_STATUS_VLAN_VALID:
                    data = _with_vlan(data, tci, tpid if pstatus & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q)
                append(make(Frame, (sec * 1_000_000_000 + nsec, LINKTYPE_ETHERNET, data)))
                pos += nxt
            release(ring, base + _BLOCK_STATUS_OFFSET, TP_STATUS_KERNEL)
            self._next = (self._next + 1) % self._block_count
            blocks.append(frames)
        return blocks

    def kernel_stats(self) -> tuple[int, int, int]:
        """(packets incl. drops, drops, queue freezes) since the last call; the kernel resets them."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        packets, drops, freezes = struct.unpack("=3I", raw)
        return packets, drops, freezes

    def close(self) -> None:
        self._ring.close()
        self.sock.close()


class SocketCapture:
    """Fallback: one interface read with recvmsg on a plain packet socket."""

    mode = "socket"

    def __init__(self, iface: str, config: LiveConfig, program: BpfProgram | None) -> None:
        self.iface = iface
        self.sock, self.ifindex = _open_packet_socket(iface, program)
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # Give the socket as much buffer as the ring would have had; SO_RCVBUFFORCE passes
        # net.core.rmem_max with CAP_NET_ADMIN, plain SO_RCVBUF is capped by it.
        size = config.block_size * config.block_count
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        _finish_open(self.sock, iface, self.ifindex, config.promisc)
        self._buf = bytearray(config.snaplen)
        self._batch = config.fallback_batch
        self._timeout = config.timeout_ms / 1000
        # One call reads at most as many blocks as the ring holds, so other interfaces get their turn.
        self._max_blocks = config.block_count
        self._pending: list[Frame] = []
        self._pending_since = 0.0

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_blocks(self) -> list[list[Frame]]:
        """Frames gathered into blocks as the ring would: a block is handed over when it holds
        `fallback_batch` frames or its first frame is `timeout_ms` old; [] otherwise."""
        pending = self._pending
        buf = self._buf
        view = memoryview(buf)
        recv = self.sock.recvmsg_into
        make = _new_tuple
        blocks: list[list[Frame]] = []
        while True:
            try:
                n, ancdata, _flags, _addr = recv([view], 256, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            data = bytes(view[:n])
            ts_ns = 0
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(payload)
                    ts_ns = sec * 1_000_000_000 + nsec
                elif level == SOL_PACKET and kind == PACKET_AUXDATA:
                    status, _len, _snap, _mac, _net, tci, tpid = _AUX.unpack_from(payload)
                    if status & TP_STATUS_VLAN_VALID:
                        vlan_tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q
                        data = _with_vlan(data, tci, vlan_tpid)
            if not pending:
                self._pending_since = time.monotonic()
            pending.append(make(Frame, (ts_ns or time.time_ns(), LINKTYPE_ETHERNET, data)))
            if len(pending) >= self._batch:
                blocks.append(pending)
                pending = self._pending = []
                if len(blocks) >= self._max_blocks:
                    return blocks
        if pending and time.monotonic() - self._pending_since >= self._timeout:
            blocks.append(pending)
            self._pending = []
        return blocks

    def has_pending(self) -> bool:
        return bool(self._pending)

    def kernel_stats(self) -> tuple[int, int, int]:
        """(packets incl. drops, drops, 0) since the last call (struct tpacket_stats)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        packets, drops = struct.unpack("=2I", raw)
        return packets, drops, 0

    def close(self) -> None:
        self.sock.close()


Capture = RingCapture | SocketCapture


def open_capture(iface: str, config: LiveConfig, program: BpfProgram | None = None) -> Capture:
    """A ring capture on `iface`, or the plain-socket fallback when the ring is off or refused."""
    if config.ring:
        try:
            return RingCapture(iface, config, program)
        except RingUnavailable as exc:
            log.warning("%s; falling back to a plain packet socket", exc)
    return SocketCapture(iface, config, program)


# Seconds between checks for a dead capture thread while a reader waits without a timeout.
_FAILURE_CHECK = 0.5


class LiveSource:
    """Frames from one or more interfaces, read by a capture thread into a bounded block queue."""

    def __init__(self, ifaces: list[str] | tuple[str, ...], config: LiveConfig | None = None) -> None:
        if not ifaces:
            raise ValueError("LiveSource needs at least one interface")
        self.config = config or LiveConfig()
        self._program = compile_bpf(self.config.bpf, self.config.snaplen)
        self._ifaces = tuple(dict.fromkeys(ifaces))
        self._queue: queue.Queue[Block] = queue.Queue(maxsize=self.config.queue_blocks)
        self._lock = threading.Lock()
        self._stats = {name: InterfaceStats(name) for name in self._ifaces}
        self._captures: dict[str, Capture] = {}
        self._failure: BaseException | None = None
        self._next_drop_log = 0.0
        self._stop = threading.Event()
        self._watcher = LinkWatcher()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            for name in self._ifaces:
                self._open_or_wait(name)
        except BaseException:
            self._close_all()
            raise
        self._capture_thread = threading.Thread(target=self._run, name="veille-capture", daemon=True)
        self._capture_thread.start()

    @property
    def interfaces(self) -> tuple[str, ...]:
        return self._ifaces

    def read_block(self, timeout: float | None = None) -> list[Frame]:
        """The next block of frames, or [] after `timeout` seconds; raises if the capture thread died."""
        block = self.read_tagged_block(timeout)
        return block.frames if block is not None else []

    def read_tagged_block(self, timeout: float | None = None) -> Block | None:
        """Like `read_block`, with the interface the frames came from."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Wait in slices so a capture thread that dies is noticed even with timeout=None.
            wait = _FAILURE_CHECK if deadline is None else min(_FAILURE_CHECK, deadline - time.monotonic())
            try:
                return self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                if self._failure is not None:
                    where = ",".join(self._ifaces)
                    raise LiveCaptureError(where, f"capture thread failed: {self._failure!r}") from self._failure
                if deadline is not None and time.monotonic() >= deadline:
                    return None

    def update_filter(self, expression: str) -> None:
        """Compile `expression` and swap it in on every open socket (atomic in the kernel; no reopen).

        Raises BpfError and keeps the old filter when the expression does not compile.
        """
        program = compile_bpf(expression, self.config.snaplen)
        with self._lock:
            self._program = program
            self.config = dataclasses.replace(self.config, bpf=expression)
            for cap in self._captures.values():
                attach_filter(cap.sock, program)

    def stats(self) -> CaptureStats:
        """Counters per interface; reads (and so resets) the kernel's PACKET_STATISTICS."""
        with self._lock:
            for name, cap in self._captures.items():
                self._add_kernel_stats(name, cap)
            return CaptureStats(tuple(dataclasses.replace(s) for s in self._stats.values()))

    def close(self) -> None:
        """Stop the capture thread and close every socket and ring."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake()
        self._capture_thread.join(timeout=5)
        self._close_all()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def _add_kernel_stats(self, name: str, cap: Capture) -> None:
        packets, drops, freezes = cap.kernel_stats()
        st = self._stats[name]
        st.kernel_packets += packets
        st.kernel_drops += drops
        st.kernel_freezes += freezes

    def _open(self, name: str) -> Capture:
        with self._lock:
            config, program = self.config, self._program
        cap = open_capture(name, config, program)
        with self._lock:
            self._captures[name] = cap
            st = self._stats[name]
            st.mode = cap.mode
            st.up = True
        return cap

    def _open_or_wait(self, name: str) -> None:
        try:
            self._open(name)
        except LiveCaptureError as exc:
            if not (self.config.wait_for_interfaces and exc.message == NO_SUCH_INTERFACE):
                raise
            log.warning("capture on %s: interface absent, waiting for it to appear", name)

    def _drop(self, name: str) -> Capture | None:
        with self._lock:
            cap = self._captures.pop(name, None)
            if cap is not None:
                with contextlib.suppress(OSError):
                    self._add_kernel_stats(name, cap)
                cap.close()
            st = self._stats[name]
            st.up = False
            st.mode = "closed"
        return cap

    def _close_all(self) -> None:
        for name in list(self._captures):
            self._drop(name)
        self._watcher.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self._failure = exc
            log.exception("capture thread failed")

    def _loop(self) -> None:
        poller = select.poll()
        wanted = select.POLLIN | select.POLLERR
        poller.register(self._wake_r, select.POLLIN)
        poller.register(self._watcher.fileno(), select.POLLIN)
        by_fd: dict[int, Capture] = {}
        for cap in self._captures.values():
            by_fd[cap.fileno()] = cap
            poller.register(cap.fileno(), wanted)
        offer = self._offer
        while not self._stop.is_set():
            ready = poller.poll(self.config.timeout_ms)
            # Plain sockets hand over a partial block once it is timeout_ms old, readable or not.
            waiting = [c for c in by_fd.values() if isinstance(c, SocketCapture) and c.has_pending()]
            for cap in waiting:
                if all(fd != cap.fileno() for fd, _ in ready):
                    for frames in cap.read_blocks():
                        offer(cap.iface, frames)
            for fd, events in ready:
                cap_or_none = by_fd.get(fd)
                if cap_or_none is not None:
                    if events & select.POLLERR:
                        self._link_error(cap_or_none)
                    for frames in cap_or_none.read_blocks():
                        offer(cap_or_none.iface, frames)
                elif fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                else:
                    for event in self._watcher.read_events():
                        self._follow_link(event, poller, by_fd)

    def _offer(self, iface: str, frames: list[Frame]) -> None:
        st = self._stats[iface]
        try:
            self._queue.put_nowait(Block(iface, frames))
        except queue.Full:
            st.pipeline_drops += len(frames)
            now = time.monotonic()
            if now >= self._next_drop_log:
                self._next_drop_log = now + self.config.drop_log_interval
                log.warning("capture on %s: pipeline queue full, %d frames dropped so far", iface, st.pipeline_drops)
            return
        st.frames += len(frames)
        st.blocks += 1

    def _link_error(self, cap: Capture) -> None:
        # ENETDOWN while the link is down: reading SO_ERROR clears it; the kernel re-hooks
        # the socket by itself when the same interface comes back up.
        err = cap.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            log.info("capture on %s: %s", cap.iface, os.strerror(err))

    def _follow_link(self, event: LinkEvent, poller: select.poll, by_fd: dict[int, Capture]) -> None:
        if event.name not in self._stats:
            return
        cap = self._captures.get(event.name)
        if event.deleted:
            if cap is not None and cap.ifindex == event.ifindex:
                self._unregister(cap, poller, by_fd)
                self._drop(event.name)
                log.warning("capture on %s: interface removed, waiting for it to return", event.name)
            return
        self._stats[event.name].up = event.up
        if cap is not None and cap.ifindex == event.ifindex:
            return
        if cap is not None:
            self._unregister(cap, poller, by_fd)
            self._drop(event.name)
        try:
            new = self._open(event.name)
        except LiveCaptureError as exc:
            log.warning("%s; will retry on the next link event", exc)
            return
        self._stats[event.name].reopens += 1
        by_fd[new.fileno()] = new
        poller.register(new.fileno(), select.POLLIN | select.POLLERR)
        log.info("capture on %s: re-opened (ifindex %d)", event.name, new.ifindex)

    @staticmethod
    def _unregister(cap: Capture, poller: select.poll, by_fd: dict[int, Capture]) -> None:
        fd = cap.fileno()
        by_fd.pop(fd, None)
        with contextlib.suppress(KeyError):
            poller.unregister(fd)
