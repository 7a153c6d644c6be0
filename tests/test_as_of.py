"""Time travel: the establishment as of any version equals its own events folded to
that version, and the store and the topic tell the same history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from consumers.publisher import Publisher
from domain import persistence
from domain.establishment import Establishment
from domain.identifiers import establishment_stream
from domain.ingest import ingest
from domain.ledger import Ledger
from replay.as_of import as_of
from replay.history import Cutoff, from_kafka, from_store, version_cutoff
from simulator import simulate
from tests.strategies import histories
from tests.test_ledger_properties import counting_clock, fresh_ledger, lines


def _comparable_aggregate(est: Establishment) -> dict[str, Any]:
    return {"saudis": est.saudis, "expatriates": est.expatriates,
            "headcount": est.saudis + est.expatriates, "activity": est.activity,
            "band": est.band, "branches": sorted(est.branches)}


def _comparable_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"saudis": row["saudis"], "expatriates": row["expatriates"],
            "headcount": row["headcount"], "activity": row["activity"], "band": row["band"],
            "branches": sorted(orjson.loads(row["branches"]))}


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories())
def test_as_of_every_version_equals_the_stream_folded_to_it(tmp_path: Path,
                                                            history: list[dict[str, Any]]
                                                            ) -> None:
    ledger = fresh_ledger(tmp_path)
    ingest(ledger, lines(history))
    number = "1-1"
    stream = establishment_stream(number)
    head = ledger.load(stream)
    assert isinstance(head, Establishment)
    for version in range(1, head.version + 1):
        folded = ledger.repository.get(stream, version=version)
        replayed = as_of(number, from_store(ledger, number,
                                            version_cutoff(ledger, number, version)))
        assert replayed.establishment is not None
        assert _comparable_row(replayed.establishment) == _comparable_aggregate(folded), \
            f"version {version}"


def test_store_and_kafka_tell_the_same_history(tmp_path: Path, kafka_bootstrap: str,
                                                fresh_topic: Any) -> None:
    from simulator import simulate

    simulate(establishments=30, months=2, seed=31, out=tmp_path / "r.jsonl")
    ledger = Ledger(f"sqlite:///{tmp_path}/e.sqlite", clock=counting_clock())
    with (tmp_path / "r.jsonl").open("rb") as requests:
        ingest(ledger, requests)
    topic = fresh_topic(partitions=3)
    publisher = Publisher(ledger, kafka_bootstrap, topic)
    publisher.publish_pending()
    publisher.close()
    transferred = _an_establishment_with_a_transfer_in(ledger)
    for cutoff in (Cutoff(), Cutoff(time="2025-01-20T00:00:00.000000Z")):
        store = as_of(transferred, from_store(ledger, transferred, cutoff))
        kafka = as_of(transferred, from_kafka(kafka_bootstrap, topic, transferred, cutoff))
        assert store.events > 0
        assert store == kafka


def _an_establishment_with_a_transfer_in(ledger: Ledger) -> str:
    """One whose workers' streams began elsewhere: the hardest history to gather."""
    from sqlalchemy import select

    from domain.persistence import EVENT_INDEX

    with ledger.recorder.datastore.engine.connect() as conn:  # type: ignore[attr-defined]
        row = conn.execute(select(EVENT_INDEX.c.establishment_id).where(
            EVENT_INDEX.c.event_type == "worker.service_transferred").limit(1)).first()
    assert row is not None, "the simulated history has no transfer"
    return str(row[0])


def test_an_establishments_history_read_by_several_connections_is_the_one_read_by_one(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """domain/persistence.py READERS: the scattered reads go out several at once; the
    records, and their order, must be those one connection reads."""
    requests = tmp_path / "requests.jsonl"
    simulate(establishments=30, months=4, seed=11, out=requests)
    ledger = Ledger(store_url, clock=counting_clock())
    with requests.open("rb") as lines_:
        ingest(ledger, lines_, batch_size=50)
    assert ledger.recorder.readers > 1  # type: ignore[attr-defined]
    positions = [position for position, _ in ledger.all_events(start=1, limit=100_000)]
    assert len(positions) > 2 * 500  # more than one chunk of ids
    apart = ledger.recorder.select_notifications_by_ids(positions)  # type: ignore[attr-defined]
    numbers = sorted({r["establishment_id"] for r in map(ledger.record_of, apart)
                      if r["establishment_id"]})
    histories_apart = {n: from_store(ledger, n, Cutoff()) for n in numbers}
    monkeypatch.setattr(persistence, "READERS", 1)
    assert ledger.recorder.readers == 1  # type: ignore[attr-defined]
    alone = ledger.recorder.select_notifications_by_ids(positions)  # type: ignore[attr-defined]
    assert [n.id for n in apart] == positions == [n.id for n in alone]
    assert apart == alone
    assert histories_apart == {n: from_store(ledger, n, Cutoff()) for n in numbers}
