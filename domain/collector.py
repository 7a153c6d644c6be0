"""The cycle collector, kept from walking what long work has built and keeps.

Python's collector fires every 700 allocations, and each older-generation pass walks
every object that has survived so far. Work that builds many acyclic objects (decoded
events, rows, aggregates) pays for those walks without anything to collect; two ways to
stop it, for two shapes of work.

A query, `collector_paused`: off for the call, back as it was after. An as-of replay
or a credential audit decodes thousands of events into dicts and lists and folds them
into rows, all acyclic, freed by reference counting alone: the as-of load of a
13,697-event establishment took 0.23-0.30 s to decode with the collector on and 0.10 s
without.

Long batched work, `frozen_between_batches` and `BatchCollector`: what survives each
batch is frozen, and a sample of batches is searched for cycles.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def collector_paused(function: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> T:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


@contextlib.contextmanager
def frozen_between_batches() -> Iterator[None]:
    """Long batched work (a rebuild, an ingest): the cycle collector runs only as
    `BatchCollector` says, instead of on its own thresholds: those fire many times a
    batch, and each full pass walks what outlives batches (a rebuild's cache of rows, an
    ingest's loaded aggregates) and the batch's objects again; that was a quarter of a
    rebuild's time and 7 % of an ingest's CPU. What was frozen is handed back to the
    collector at the end (unless the process had frozen objects of its own, which cannot
    be told apart)."""
    frozen_before, enabled = gc.get_freeze_count(), gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if frozen_before == 0:
            gc.unfreeze()
        if enabled:
            gc.enable()


class BatchCollector:
    """After each batch its survivors are frozen (so no pass walks them again), and one
    batch in `every` is first searched for garbage cycles. Rows and records hold no
    cycles, so a search finds none (none in a whole F = 0.01 rebuild: 62 searches, 0
    objects; none in an F = 0.01 ingest's 18) and searching every batch was 5-6 % of a
    rebuild's CPU, spent walking the batch's new cached rows and kept fraud states. Once
    a search finds a cycle, every batch is searched, as before: what a cycle-making
    change leaves frozen is at most `every` batches' cycles, and the collector gets them
    back at the end."""

    def __init__(self, every: int = 20) -> None:
        self.every = every
        self.batches = 0

    def after_batch(self) -> None:
        self.batches += 1
        if self.batches % self.every == 0 and gc.collect(0):
            self.every = 1
        gc.freeze()


__all__ = ["BatchCollector", "collector_paused", "frozen_between_batches"]
