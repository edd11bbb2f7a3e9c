"""Optional compiled accelerator: `VEILLE_COMPILE=1 pip install .` builds the hot modules with mypyc
from the same sources (mypy from the package registry; no download at run time). Without it the pure
Python modules are installed and used; both paths run the same tests."""

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

ext_modules = []
if os.environ.get("VEILLE_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(HOT_MODULES, opt_level="3")

setup(ext_modules=ext_modules)
