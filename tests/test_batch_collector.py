"""Cycle collection between batches (domain/collector.py, `BatchCollector`, used by the
rebuild and the ingest): a sample of the batches is searched for garbage cycles, and
once one is found every batch is, so a change that makes cycles costs memory for a few
batches at most, not for the whole run."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from domain.collector import BatchCollector
from domain.ingest import ingest
from tests.strategies import histories
from tests.test_ledger_properties import FAST, fresh_ledger, lines


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


@FAST
@given(history=histories())
def test_an_ingest_collects_between_batches_only_and_gives_the_collector_back(
        tmp_path: Path, history: list[dict[str, Any]]) -> None:
    """Between two batches the collector is off and what the batches built is frozen;
    once the ingest returns, the collector is back on and holds everything again."""
    enabled, seen = gc.isenabled(), []
    ingest(fresh_ledger(tmp_path), lines(history), batch_size=2,
           progress=lambda n: seen.append((gc.isenabled(), gc.get_freeze_count())))
    between, after = seen[:-1], seen[-1]
    assert len(between) == len(history) // 2
    assert all(not on and frozen > 0 for on, frozen in between)
    assert after == (enabled, 0)
