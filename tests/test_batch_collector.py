"""The rebuild's cycle collection (replay/rebuild.py, `BatchCollector`): a sample of the
batches is searched for garbage cycles, and once one is found every batch is, so a
change that makes cycles costs memory for a few batches at most, not for the build."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from replay.rebuild import BatchCollector


@pytest.fixture
def collector_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    gc.collect()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


class Node:
    def __init__(self) -> None:
        self.me = self


def _cycle() -> weakref.ref[Node]:
    return weakref.ref(Node())


def test_batches_without_cycles_are_searched_one_in_every(collector_off: None) -> None:
    collector = BatchCollector(every=4)
    for _ in range(12):
        [dict(n=n) for n in range(100)]  # garbage without cycles: freed as it goes
        collector.after_batch()
    assert collector.every == 4


def test_a_cycle_found_by_a_search_makes_every_batch_searched(collector_off: None) -> None:
    collector = BatchCollector(every=3)
    frozen = _cycle()
    collector.after_batch()  # not searched: the cycle is frozen, for the end of the build
    collector.after_batch()
    assert collector.every == 3 and frozen() is not None
    found = _cycle()
    collector.after_batch()  # the third batch, searched
    assert collector.every == 1
    assert found() is None
    again = _cycle()
    collector.after_batch()  # now every batch is searched: collected, not frozen
    assert again() is None
