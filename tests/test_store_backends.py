"""The event store on SQLite and on a real PostgreSQL: the same ingest, the same record."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, given, settings

from domain.identifiers import establishment_stream
from domain.ingest import ingest
from domain.ledger import Ledger
from tests.strategies import histories
from tests.test_ledger_properties import all_records, counting_clock, lines


def _history() -> list[dict[str, object]]:
    """One fixed, fairly long generated history (hypothesis used as a generator)."""
    found: list[list[dict[str, object]]] = []

    @settings(max_examples=1, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(histories(max_steps=60))
    def grab(h: list[dict[str, object]]) -> None:
        found.append(h)

    grab()
    return found[0]


def test_sqlite_and_postgres_record_identical_events(sqlite_url: str,
                                                     fresh_pg_url: str) -> None:
    history = _history()
    on_sqlite = Ledger(sqlite_url, clock=counting_clock())
    on_postgres = Ledger(fresh_pg_url, clock=counting_clock())
    a = ingest(on_sqlite, lines(history), batch_size=7)
    b = ingest(on_postgres, lines(history), batch_size=7)
    assert a.decided == b.decided == len(history)
    assert (a.accepted, a.refused, a.rules) == (b.accepted, b.refused, b.rules)
    records = all_records(on_sqlite)
    assert records, "nothing was recorded"
    assert records == all_records(on_postgres)


def test_store_round_trip_and_chain_on_each_backend(store_url: str) -> None:
    ledger = Ledger(store_url, clock=counting_clock())
    report = ingest(ledger, lines(_history()))
    assert sum(report.accepted.values()) > 0
    streams = {UUID(r["stream"]) for r in all_records(ledger)}
    assert all(ledger.verify_stream(s) == [] for s in streams)
    # The next ingest's known streams, read from this backend's store, hold them all.
    known = ledger.known_streams()
    assert all(known.may_hold(s) for s in streams)
    assert not known.may_hold(establishment_stream("9-999999"))
    est = ledger.load(establishment_stream("1-1"))
    assert est is not None and est.file_number == "1-1"


def test_reopening_a_file_store_keeps_the_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.sqlite"
    first = Ledger(url, clock=counting_clock())
    ingest(first, lines(_history()))
    before = all_records(first)
    assert all_records(Ledger(url)) == before
