"""Optional compiled accelerator: `VEILLE_COMPILE=1 pip install .` builds the hot modules from the same
sources: mypyc for the typed pipeline modules, Cython for the bypass walk (capture/fastpath.py, with
its C types in capture/fastpath.pxd). Both compilers come from the package registry; nothing is
downloaded at run time. Without VEILLE_COMPILE the pure Python modules are installed and used; both
paths run the same tests (scripts/test_accel.sh)."""

import os

from setuptools import setup

HOT_MODULES = [
    "capture/packet.py",
    "capture/decode.py",
    "capture/flows.py",
    "capture/pcapfile.py",
    "capture/tcpopts.py",
    "capture/community_id.py",
    "capture/observe.py",
    "agent/pipeline.py",
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
