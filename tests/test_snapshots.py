"""Snapshots of a large establishment, taken by the real Ledger as ingest commits.

A load must start from a snapshot near the head and read fewer than SNAPSHOT_EVERY
events after it, and what it rebuilds must equal folding every event from version 1:
a snapshot that drifted from the fold would silently change every later decision.
(How fast this is, is measured in bench/snapshots.py, never here.)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.application import Repository, project_aggregate

from domain.establishment import Establishment
from domain.identifiers import establishment_stream
from domain.ingest import ingest
from domain.ledger import Ledger, replay_stream
from domain.streams import Stream

FILE = "1-500"
OWNER = "owner-500"
WORKERS = 500
FILLERS = 2_500  # recruitment requests: one establishment event each, kept or refused
EVERY = Ledger.SNAPSHOT_EVERY[Establishment]
DAY = date(2025, 1, 5)


def clock() -> Any:
    ticks = itertools.count()
    base = datetime(2025, 1, 5, tzinfo=UTC)
    return lambda: base + timedelta(microseconds=next(ticks))


class Requests:
    """JSON Lines requests of one owner's establishment, a minute apart."""

    def __init__(self) -> None:
        self.n = itertools.count(1)

    def line(self, service: str, payload: dict[str, Any], file: str | None = FILE) -> bytes:
        n = next(self.n)
        moment = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(minutes=n)
        return orjson.dumps({
            "request_id": f"r{n}", "service": service,
            "occurred_at": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "channel": "portal",
            "actor": {"account_id": OWNER, "role": "owner", "on_behalf_of": None},
            "session_id": "s-1", "auth": {"method": "password", "credential_id": "c-1"},
            "client": {"ip": "10.0.0.1", "device_id": "d-1"},
            "establishment_id": file, "payload": payload})

    def hire(self, i: int) -> bytes:
        if i % 5 < 2:
            return self.line("worker.join", {
                "worker_id": f"1{i:09d}", "nationality": "SAU", "saudi_category": "saudi",
                "profession": "accountant", "wage_sar": 4000})
        return self.line("worker.join", {
            "worker_id": f"2{i:09d}", "nationality": "IND", "profession": "mason",
            "wage_sar": 1500, "arrival_date": DAY.isoformat(),
            "iqama_expiry": (DAY + timedelta(days=730)).isoformat()})

    def history(self) -> Iterator[bytes]:
        yield self.line("account.owner_registered", {"email": "owner@example.sa"}, None)
        yield self.line("establishment.open_file", {
            "name": "Snapshot Test Est.", "commercial_registration": "1010101010",
            "activity": "construction", "city": "Riyadh", "owner_counts_as_saudi": True})
        for i in range(1, WORKERS + 1):
            yield self.hire(i)
        for i in range(FILLERS):
            yield self.line("recruitment.balance_request", {"count": 1 + i % 9})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, UUID]:
    """One establishment of ~3,000 events, ingested in batches as production does."""
    url = f"sqlite:///{tmp_path_factory.mktemp('snapshots') / 'events.sqlite'}"
    report = ingest(Ledger(url, clock=clock()), Requests().history(), batch_size=37)
    assert report.decided == 2 + WORKERS + FILLERS and not report.malformed
    assert sum(report.accepted.values()) >= 2 + WORKERS
    return url, establishment_stream(FILE)


def state(aggregate: Stream) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def rows_read(ledger: Ledger, stream: UUID) -> list[int]:
    """Wrap the recorder: how many event rows each select for `stream` returned."""
    counts: list[int] = []
    inner = ledger.recorder.select_events

    def counting(originator_id: Any, *args: Any, **kwargs: Any) -> Any:
        found = inner(originator_id, *args, **kwargs)
        if str(originator_id) == str(stream):
            counts.append(len(found))
        return found

    ledger.recorder.select_events = counting  # type: ignore[method-assign]
    return counts


def snapshot_versions(url: str, stream: UUID) -> list[int]:
    ledger = Ledger(url)
    assert ledger.snapshots is not None
    return [s.originator_version for s in ledger.snapshots.recorder.select_events(stream)]


def folded(url: str, stream: UUID, version: int | None = None) -> Stream:
    """Every event from version 1, no snapshot store."""
    found: Stream = Repository(Ledger(url).events).get(stream, version=version)
    return found


def test_the_establishment_is_large_and_fully_staffed(store: tuple[str, UUID]) -> None:
    url, stream = store
    est = Ledger(url).load(stream)
    assert isinstance(est, Establishment)
    assert est.version >= 2 + WORKERS + FILLERS - 1
    assert est.saudis + est.expatriates == WORKERS


def test_a_snapshot_sits_within_snapshot_every_of_the_head(store: tuple[str, UUID]) -> None:
    url, stream = store
    head = folded(url, stream).version
    versions = snapshot_versions(url, stream)
    assert len(versions) >= head // EVERY - 1
    assert head - EVERY < versions[-1] <= head


def test_a_fresh_load_reads_only_the_events_after_the_snapshot(
        store: tuple[str, UUID]) -> None:
    url, stream = store
    ledger = Ledger(url)
    counts = rows_read(ledger, stream)
    est = ledger.load(stream)
    assert est is not None
    after = est.version - snapshot_versions(url, stream)[-1]
    assert counts == [after]
    assert after < EVERY


def test_the_snapshot_load_equals_the_fold_of_every_event(store: tuple[str, UUID]) -> None:
    url, stream = store
    plain = Ledger(url)
    counts = rows_read(plain, stream)
    replayed: Stream = Repository(plain.events).get(stream)
    assert counts == [replayed.version], "the baseline must not use a snapshot"
    loaded = Ledger(url).load(stream)
    assert loaded is not None
    assert state(loaded) == state(replayed)


def test_the_ledgers_replay_folds_as_the_librarys_projector(store: tuple[str, UUID]) -> None:
    url, stream = store
    events = list(Ledger(url).events.get(stream))
    mine, theirs = replay_stream(None, events), project_aggregate(None, events)
    assert theirs is not None and mine.version == len(events)
    assert state(mine) == state(theirs)


def test_every_snapshot_equals_the_fold_up_to_its_version(store: tuple[str, UUID]) -> None:
    url, stream = store
    ledger = Ledger(url)
    for version in snapshot_versions(url, stream):
        from_snapshot: Stream = ledger.repository.get(stream, version=version)
        assert state(from_snapshot) == state(folded(url, stream, version)), version


def test_a_load_between_snapshots_replays_from_the_earlier_one(
        store: tuple[str, UUID]) -> None:
    url, stream = store
    versions = snapshot_versions(url, stream)
    middle = versions[-2] + (versions[-1] - versions[-2]) // 2
    ledger = Ledger(url)
    counts = rows_read(ledger, stream)
    at_middle: Stream = ledger.repository.get(stream, version=middle)
    assert counts == [middle - versions[-2]]
    assert state(at_middle) == state(folded(url, stream, middle))
