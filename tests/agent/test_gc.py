"""settle_gc: the collector's thresholds while a pipeline runs, and what a reload leaves behind."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from agent.pipeline import GC_THRESHOLDS, PipelineConfig, settle_gc


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class _Cyclic:
    """Stands for loaded knowledge that refers to itself (rule objects pointing at their rule set)."""

    def __init__(self) -> None:
        self.me = self


def test_the_cli_pipeline_raises_thresholds_and_freezes_what_setup_built() -> None:
    from veille.replay import make_pipeline

    gc.unfreeze()
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    assert make_pipeline(PipelineConfig()) is not None  # what `veille replay` and `--ship` build
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # above CPython's default, or settling changes nothing
    assert gc.get_freeze_count() > 0


def test_settling_again_frees_cycles_frozen_the_time_before() -> None:
    old = _Cyclic()
    ref = weakref.ref(old)
    settle_gc()  # `old` is now frozen, as a first rule set is
    del old
    gc.collect()
    assert ref() is not None, "a frozen cycle is out of the collector's sight"
    settle_gc()  # a reload settles again: the old cycle must go
    assert ref() is None
