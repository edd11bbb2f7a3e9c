"""The agent's code under the agent unit's own system call filter, applied with libseccomp.

The unit says SystemCallFilter=@system-service, then ~@privileged @resources, with
SystemCallErrorNumber=EPERM, and RestrictAddressFamilies= lists five families.
systemd-analyze expands those groups; a probe process installs the same allow-list
through libseccomp (ctypes, no extra package), socket() only for those families, and then
runs what the agent does at start and in its loop: compile a BPF filter, open a
LiveSource with its TPACKET_V3 ring and link watcher, read interfaces and neighbours,
load the example config, log JSON, notify systemd, read psutil health figures. setpriv
narrows the probe's capabilities to the unit's bounding set, CAP_NET_RAW alone: the ring, the
filter, promiscuous membership (checked) and netlink reads need nothing more.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "veille-agent.service"


def _group(tool: str, name: str, seen: set[str]) -> set[str]:
    if name in seen:
        return set()
    seen.add(name)
    proc = subprocess.run([tool, "syscall-filter", name], capture_output=True, text=True, check=True, timeout=30)
    calls: set[str] = set()
    for line in proc.stdout.splitlines()[1:]:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        calls |= _group(tool, entry, seen) if entry.startswith("@") else {entry}
    return calls


def unit_allow_list(tool: str) -> set[str]:
    """The syscalls veille-agent.service allows, from its SystemCallFilter= lines."""
    allowed: set[str] = set()
    for line in UNIT.read_text().splitlines():
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.split("=", 1)[1]
        deny = value.startswith("~")
        names = value.lstrip("~").split()
        calls: set[str] = set()
        for name in names:
            calls |= _group(tool, name, set()) if name.startswith("@") else {name}
        allowed = allowed - calls if deny else allowed | calls
    return allowed


def unit_families() -> list[int]:
    """The address families of the unit's RestrictAddressFamilies= line, as numbers."""
    import socket

    line = next(x for x in UNIT.read_text().splitlines() if x.startswith("RestrictAddressFamilies="))
    return [int(getattr(socket, name)) for name in line.split("=", 1)[1].split()]


PROBE = r"""
import ctypes, errno, io, os, sys
names = sys.stdin.read().split()
lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO = lambda e: 0x00050000 | e
class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_uint), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
lib.seccomp_rule_add_array.argtypes = [
    ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgCmp)
]
SCMP_CMP_EQ = 4
families = [int(f) for f in sys.argv[2].split(",")]
ctx = lib.seccomp_init(SCMP_ACT_ERRNO(errno.EPERM))
for name in names:
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr < 0:
        continue
    if name == "socket":  # RestrictAddressFamilies=: socket() only for the unit's families
        for family in families:
            cmp = ArgCmp(0, SCMP_CMP_EQ, family, 0)
            assert lib.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, ctypes.byref(cmp)) == 0
        continue
    assert lib.seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) == 0, name
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS, as NoNewPrivileges=yes
assert lib.seccomp_load(ctx) == 0
# A syscall outside the list must now fail: sched_setaffinity is in @resources, which the unit denies.
try:
    os.sched_setaffinity(0, os.sched_getaffinity(0))
    print("sched_setaffinity allowed?!")
except OSError as exc:
    print("filter active:", exc.errno == errno.EPERM)
import socket
try:
    socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0)
    print("AF_ALG allowed?!")
except OSError as exc:
    print("families restricted:", exc.errno == errno.EPERM)

# CapabilityBoundingSet=CAP_NET_RAW: bit 13.
import re
caps = int(re.search(r"CapEff:\s*(\w+)", open("/proc/self/status").read()).group(1), 16)
print("capabilities:", hex(caps))

import logging, psutil
from capture.bpf import compile_bpf
from capture.live import LiveConfig, LiveSource
from capture.netinfo import list_interfaces, neighbours
from agent.config import load_config
from agent.logging import setup_logging
from agent.sdnotify import Notifier
setup_logging("info", io.StringIO())
logging.getLogger("probe").info("hello", extra={"token": "x"})
compile_bpf("tcp port 443 or udp port 53")
promisc_before = next(i.promiscuity for i in list_interfaces() if i.name == "lo")
with LiveSource(["lo"], LiveConfig(bpf="udp", timeout_ms=10, promisc=True)) as src:
    src.read_block(0.05)
    stats = src.stats()
    promisc_during = next(i.promiscuity for i in list_interfaces() if i.name == "lo")
assert stats.interfaces[0].mode == "ring", stats
assert promisc_during == promisc_before + 1, (promisc_before, promisc_during)
assert any(i.name == "lo" for i in list_interfaces())
neighbours()
config = load_config(sys.argv[1])
Notifier({}).ready()
proc = psutil.Process()
proc.memory_info(); proc.cpu_times(); psutil.cpu_percent(None); psutil.virtual_memory()
print("agent ok")
"""


def test_agent_code_runs_under_the_units_syscall_filter(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    if os.geteuid() != 0:
        pytest.skip("needs root to open a packet socket on lo")
    allowed = unit_allow_list(tool)
    families = unit_families()
    assert {"socket", "mmap", "poll", "setsockopt"} <= allowed
    assert "sched_setaffinity" not in allowed and "bpf" not in allowed
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "collector-secret").write_text("probe-secret\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "CREDENTIALS_DIRECTORY": str(creds)}
    # As the unit's bounding set: only CAP_NET_RAW remains effective.
    setpriv = shutil.which("setpriv")
    wrapper = [setpriv, "--bounding-set=-all,+net_raw", "--inh-caps=-all"] if setpriv else []
    proc = subprocess.run(
        [*wrapper, sys.executable, "-c", PROBE, str(REPO / "etc" / "agent.example.toml"), ",".join(map(str, families))],
        input=" ".join(sorted(allowed)),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if "libseccomp.so.2" in proc.stderr and "OSError" in proc.stderr:
        pytest.skip("libseccomp is not installed")
    print(f"{len(allowed)} system calls allowed by veille-agent.service")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.split("\n")
    assert lines[:2] == ["filter active: True", "families restricted: True"]
    assert lines[3] == "agent ok"
    if setpriv:
        assert lines[2] == "capabilities: 0x2000"
