"""The unit of work's cold tier (domain/cold_tier.py): a frozen aggregate thaws to the
state it had, the tier keeps to its bytes, and an ingest through it records the same."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cold_tier import ColdTier, Shapes, freeze, thaw
from domain.ingest import ingest
from domain.requests import parse_request
from domain.streams import Stream
from domain.unit_of_work import UnitOfWork
from domain.worker import Worker
from tests.strategies import histories
from tests.test_ledger_properties import FAST, all_records, fresh_ledger, lines, spy_on_loads


def full_state(aggregate: Stream) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def decided(tmp: Path, history: list[dict[str, Any]]) -> list[Stream]:
    """Every aggregate a history leaves, as the decisions saw it."""
    ledger = fresh_ledger(tmp)
    uow = ledger.unit_of_work()
    for line in lines(history):
        ledger.decide(uow, parse_request(line))
    uow.commit()
    return [a for a in [*uow.kept.values(), *uow.cache.values()] if a is not None]


@FAST
@given(history=histories())
def test_every_kind_of_aggregate_thaws_to_the_state_it_was_frozen_in(
        tmp_path: Path, history: list[dict[str, Any]]) -> None:
    aggregates = decided(tmp_path, history)
    assert aggregates, "the history touched no aggregate"
    shapes = Shapes()
    for a in aggregates:
        back = thaw(type(a), a.id, freeze(a, shapes), shapes)
        assert type(back) is type(a)
        assert full_state(back) == full_state(a), f"{type(a).__name__} {a.id}"
        assert back.version == a.version and back.modified_on == a.modified_on


def test_an_aggregate_with_events_not_committed_is_not_frozen() -> None:
    w = _worker(1, "x")
    w._pending_events.append(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not yet committed"):
        freeze(w, Shapes())


@given(st.lists(st.integers(1, 60), min_size=1, max_size=40), st.integers(0, 400))
def test_the_tier_keeps_to_its_bytes_and_lets_the_oldest_go_first(
        sizes: list[int], limit: int) -> None:
    tier = ColdTier(limit)
    workers = [_worker(n, "x" * size) for n, size in enumerate(sizes)]
    for w in workers:
        tier.put(w)
        assert tier.size <= max(limit, 0)
    held = [w for w in workers if tier.take(w.id) is not None]
    # What stays is the newest run of puts: nothing older than something let go.
    assert held == workers[len(workers) - len(held):]
    assert tier.size == 0 and len(tier) == 0


def test_the_tier_takes_no_more_memory_than_it_counts() -> None:
    """Its bound is of memory: a frozen state must not keep a larger buffer alive (orjson's
    output kept about 8 KiB for 430 bytes, 17 GiB at F = 1.0's 21st minute)."""
    workers = [_worker(n, f"2{n:09d}") for n in range(3_000)]
    tier = ColdTier(1 << 30)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for w in workers:
        tier.put(w)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(tier) == len(workers)
    assert grown <= tier.size


def test_a_tier_of_no_bytes_holds_nothing() -> None:
    tier = ColdTier(0)
    w = _worker(1, "x")
    tier.put(w)
    assert len(tier) == 0 and tier.take(w.id) is None


@FAST
@given(history=histories(), batch=st.integers(1, 40))
def test_a_one_aggregate_cache_over_a_cold_tier_records_the_same_and_never_reloads(
        tmp_path: Path, history: list[dict[str, Any]], batch: int) -> None:
    """Every stream is opened by this ingest, so with the known streams and the tier
    nothing needs the store: an aggregate let go by the cache comes back thawed."""
    plain, tiered = fresh_ledger(tmp_path), fresh_ledger(tmp_path)
    reloaded = spy_on_loads(tiered)
    a = ingest(plain, lines(history), batch_size=batch)
    b = ingest(tiered, lines(history), batch_size=batch, cache_size=1, cold_bytes=1 << 24)
    assert (a.accepted, a.refused, a.rules) == (b.accepted, b.refused, b.rules)
    assert all_records(tiered) == all_records(plain)
    assert reloaded == []


def _worker(n: int, name: str) -> Worker:
    w: Worker = object.__new__(Worker)
    vars(w).update(_id=UUID(int=n + 1), _version=1, _created_on=None, _modified_on=None,
                   _pending_events=[], worker_id=name)
    return w


@pytest.mark.parametrize(("given_bytes", "expected"), [(None, 3 * 2**20), (5, 5)])
def test_an_ingests_cold_tier_is_bounded_by_the_setting_unless_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given_bytes: int | None,
        expected: int) -> None:
    """The operator sizes the tier (SIJIL_INGEST_COLD_MIB) to the population: at
    F = 1.0 a tier too small for every worker sends them back to the store."""
    monkeypatch.setenv("SIJIL_INGEST_COLD_MIB", "3")
    ledger = fresh_ledger(tmp_path)
    made: list[UnitOfWork] = []
    real = ledger.unit_of_work

    def keeping(*args: Any, **kwargs: Any) -> UnitOfWork:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ledger, "unit_of_work", keeping)
    ingest(ledger, lines([]), cold_bytes=given_bytes)
    assert [uow.cold.limit_bytes for uow in made] == [expected]
