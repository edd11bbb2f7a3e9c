"""Optional compiled accelerator, built from the same sources.

`scripts/install.sh --accel` does it: `pip install .` (the dependencies, which mypyc type-checks
against), `pip install mypy cython`, then `VEILLE_COMPILE=1 pip install --no-build-isolation --no-deps
--force-reinstall .` compiles the hot modules: mypyc for the pipeline modules below, Cython for the
bypass walk (capture/fastpath.py, with its C types in capture/fastpath.pxd). Both compilers come from
the package registry; nothing is downloaded at run time. Without VEILLE_COMPILE the pure Python
modules are installed and used; both paths run the same tests (scripts/test_accel.sh)."""

import os

from setuptools import setup

# Compiled by mypyc: every module a packet, an observation or an event passes through. Measured on the
# bench mix with 1,000 rules: the first eight alone ran about 1.0x the pure build; the whole
# list about 1.9x (docs/performance.md). agent/detections.py stays pure: mypyc cannot compile its
# OrderedDict subclass safely (a segfault in test_detections), and it is not on the hot path.
# capture/live.py (the ring reader builds a frame per packet) must not name an attribute `_thread`:
# mypyc's C for it collides with the `__thread` keyword.
HOT_MODULES = [
    "capture/packet.py",
    "capture/decode.py",
    "capture/flows.py",
    "capture/pcapfile.py",
    "capture/live.py",
    "capture/tcpopts.py",
    "capture/community_id.py",
    "capture/observe.py",
    "capture/protocols/_util.py",
    "capture/protocols/dhcp.py",
    "capture/protocols/dhcp6.py",
    "capture/protocols/dns.py",
    "capture/protocols/http.py",
    "capture/protocols/nbns.py",
    "capture/protocols/quic.py",
    "capture/protocols/ssdp.py",
    "capture/protocols/ssh.py",
    "capture/protocols/tls.py",
    "signatures/grease.py",
    "signatures/hassh.py",
    "signatures/ja3.py",
    "signatures/ja4.py",
    "signatures/p0f.py",
    "signatures/macaddr.py",
    "signatures/services.py",
    "signatures/useragent.py",
    "signatures/evidence.py",
    "signatures/ioc.py",
    "signatures/rules/buffers.py",
    "signatures/rules/engine.py",
    "signatures/rules/matching.py",
    "signatures/rules/model.py",
    "signatures/rules/prefilter.py",
    "signatures/rules/thresholds.py",
    "agent/classify.py",
    "agent/inventory.py",
    "agent/pipeline.py",
    "veille/replay.py",
]
# Compiled by Cython rather than mypyc: a byte loop over a typed memoryview.
CYTHON_MODULES = ["capture/fastpath.py"]

ext_modules = []
if os.environ.get("VEILLE_COMPILE") == "1":
    from Cython.Build import cythonize
    from mypyc.build import mypycify

    ext_modules = mypycify(HOT_MODULES, opt_level="3") + cythonize(
        CYTHON_MODULES,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "annotation_typing": False},
    )

setup(ext_modules=ext_modules)
