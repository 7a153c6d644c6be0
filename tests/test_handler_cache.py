"""The projection handler's row cache changes what it costs, never what it writes: a
fresh-table fold (the rebuild's) through a cache too small for the history — so small
that it stops tracking the keys it evicted, to keep memory bounded, and asks the
database for every row it does not hold — writes the rows a cache holding everything
writes, and both are the folds in memory. Real SQLite read models; no broker (the
deliveries are the store's records, numbered as one partition)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consumers.projection_runner import ProjectionHandler
from consumers.runtime import Delivery
from domain.ingest import ingest
from domain.ledger import Ledger
from projections.catalog import ALL
from projections.database import projections_engine
from simulator import simulate
from tests.test_ledger_properties import all_records, counting_clock
from tests.test_projection_laws import assert_same, in_memory, read_models, without_relay_marks


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("handler-cache")
    simulate(establishments=25, months=1, seed=5, out=folder / "r.jsonl", leaks=1)
    url = f"sqlite:///{folder}/events.sqlite"
    with (folder / "r.jsonl").open("rb") as lines:
        ingest(Ledger(url, clock=counting_clock()), lines)
    return all_records(Ledger(url))


def fold(records: list[dict[str, Any]], url: str, cache_rows: int) -> ProjectionHandler:
    engine = projections_engine(url)
    handler = ProjectionHandler(engine, ALL, cache_rows, group=None, fresh=True)
    deliveries = [Delivery("t", 0, n, None, r) for n, r in enumerate(records)]
    for start in range(0, len(deliveries), 300):
        with engine.begin() as conn:
            handler.handle(conn, deliveries[start:start + 300])
        handler.committed()
    engine.dispose()
    return handler


def test_a_cache_too_small_to_track_its_evictions_writes_the_same_rows(
        records: list[dict[str, Any]], tmp_path: Path) -> None:
    small = fold(records, f"sqlite:///{tmp_path}/small.sqlite", cache_rows=200)
    large = fold(records, f"sqlite:///{tmp_path}/large.sqlite", cache_rows=10**7)
    assert small.evicted is None, "the bound on tracked evictions was never reached"
    assert large.evicted == set()
    built = without_relay_marks(read_models(f"sqlite:///{tmp_path}/small.sqlite"))
    assert_same(built, without_relay_marks(read_models(f"sqlite:///{tmp_path}/large.sqlite")),
                "small cache vs large")
    assert_same(built, in_memory(records), "small cache vs in memory")
