"""The ledger application: the eventsourcing Application that stores decisions.

The event store is the system of record for decisions (DESIGN.md): it enforces one
version per stream position, which Kafka cannot. Events are saved in decision order, so
the store's notification ids — the global `position` — follow the order of requests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Notification, StoredEvent

from domain.account import Account, Unattributed
from domain.context import iso
from domain.decide import Outcome, decide
from domain.encoding import MAPPER_TOPIC
from domain.envelope import contract_record
from domain.establishment import Establishment
from domain.integrity import ChainProblem, verify_chain
from domain.known_streams import KnownStreams
from domain.nitaqat import ThresholdTable
from domain.persistence import FACTORY_TOPIC
from domain.requests import RequestBase
from domain.rules import Rules
from domain.streams import Stream
from domain.unit_of_work import EventStore, UnitOfWork
from domain.worker import Worker

EVENT_FIELDS = frozenset({
    "originator_id", "originator_version", "timestamp", "event_id", "event_type",
    "schema_version", "establishment_id", "occurred_at", "request", "payload", "prev_hash",
    "hash"})


def index_entry(event: Stream.Event) -> dict[str, Any]:
    """The store index's row for an event (its position is added when it is recorded)."""
    request = event.request
    return {"stream": str(event.originator_id), "version": event.originator_version,
            "establishment_id": event.establishment_id, "occurred_at": event.occurred_at,
            "event_type": event.event_type, "request_id": request["request_id"],
            "account_id": request["actor"]["account_id"],
            "credential_id": request["auth"]["credential_id"],
            "session_id": request["session_id"], "device_id": request["client"]["device_id"],
            "ip": request["client"]["ip"]}


@dataclass(frozen=True)
class Batch:
    """What one commit writes, already encoded."""

    events: list[StoredEvent]
    index: list[dict[str, Any]]
    snapshots: list[StoredEvent]


def now_utc() -> datetime:
    return datetime.now(UTC)


def replay_stream(stream: Any, events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its `assert isinstance(event,
    CanMutateProtocol)`: a check against a runtime Protocol walks the protocol's members
    on every call, about 36 µs an event, which at F = 1.0 was a fifth of the deciding
    process's time once its loads replayed establishments from disk (bench/RESULTS.md).
    The mapper makes only the ledger's own events, and each of them can mutate."""
    for event in events:
        stream = event.mutate(stream)
    return stream


class Ledger(Application):  # type: ignore[type-arg]
    name = "sijil"
    # Events between snapshots: an establishment of 50,000 workers and a million events
    # loads from its latest snapshot plus at most this many events.
    SNAPSHOT_EVERY: ClassVar[dict[type[Stream], int]] = {
        Establishment: 500, Worker: 200, Account: 200, Unattributed: 500,
    }
    # Kinds a unit of work keeps once loaded, outside its bounded cache, where a cache of
    # 100,000 aggregates that millions of workers pass through lets them go between two
    # of their requests (bench/RESULTS.md). Establishments: 241,396 at F = 1.0, about
    # 3 KiB each loaded, a load a snapshot and up to 499 events (2.7-3.9 ms from a store
    # beyond the page cache). Accounts: 198,252 at F = 1.0, about 1 KiB each, asked for
    # by every request's authorization, each login an event on the stream, so a load is
    # a snapshot and up to 199 scattered events: 27 % of the deciding process's time at
    # F = 1.0's 45th minute went to loading accounts back.
    STAYS_LOADED: ClassVar[tuple[type[Stream], ...]] = (Establishment, Account)

    def __init__(self, url: str, *, rules: Rules | None = None,
                 table: ThresholdTable | None = None,
                 clock: Callable[[], datetime] = now_utc) -> None:
        super().__init__(env={
            "PERSISTENCE_MODULE": FACTORY_TOPIC,
            "MAPPER_TOPIC": MAPPER_TOPIC,
            "SQLALCHEMY_URL": url,
            "IS_SNAPSHOTTING_ENABLED": "y",
            "CREATE_TABLE": "y",
        })
        self._plain_json = self.mapper.cipher is None and self.mapper.compressor is None
        self.rules = rules or Rules()
        self.table = table or ThresholdTable.shipped()
        self.clock = clock

    # -- the EventStore port of domain.unit_of_work -----------------------------------
    def load(self, stream_id: UUID) -> Stream | None:
        try:
            found: Stream = self.repository.get(stream_id, projector_func=replay_stream)
            return found
        except AggregateNotFoundError:
            return None

    def commit(self, events: list[Stream.Event], aggregates: list[Stream]) -> None:
        self.write(self.prepare(events, aggregates))

    def prepare(self, events: list[Stream.Event], aggregates: list[Stream]) -> Batch:
        """A batch in its stored form, taken now: the aggregates may change as soon as
        this returns (domain/write_behind.py decides the next batch while this one is
        written), and a snapshot copies their state only shallowly."""
        return Batch(events=[self.mapper.to_stored_event(e) for e in events],
                     index=[index_entry(e) for e in events],
                     snapshots=[self.mapper.to_stored_event(s)
                                for s in self._snapshots_due(events, aggregates)])

    def write(self, batch: Batch) -> None:
        """The events and their index in one transaction, then the snapshots: a snapshot
        is only a shortcut, so one lost with its transaction costs a longer load."""
        self.recorder.insert_events(batch.events, index=batch.index)
        if batch.snapshots:
            assert self.snapshots is not None
            self.snapshots.recorder.insert_events(batch.snapshots)

    def _snapshots_due(self, events: list[Stream.Event],
                       aggregates: list[Stream]) -> list[Any]:
        new = Counter(e.originator_id for e in events)
        due = []
        for aggregate in aggregates:
            every = self.SNAPSHOT_EVERY.get(type(aggregate), 0)
            before = aggregate.version - new[aggregate.id]
            if every and aggregate.version // every > before // every:
                due.append(aggregate.Snapshot.take(aggregate))
        return due

    # -- deciding -------------------------------------------------------------------
    def unit_of_work(self, cache_size: int = 100_000, store: EventStore | None = None,
                     known: KnownStreams | None = None, cold_bytes: int = 0) -> UnitOfWork:
        return UnitOfWork(store or self, self.clock, cache_size, self.STAYS_LOADED, known,
                          cold_bytes)

    def known_streams(self) -> KnownStreams:
        """The streams already in the store, for a unit of work that will open many:
        read once (an ingest's start), where a single request would not repay it."""
        return KnownStreams.of(self.recorder.select_stream_ids())  # type: ignore[attr-defined]

    def keep_pages(self, mib: int) -> None:
        """For the one process that writes the store, as the ingest's writer does
        (domain/write_behind.py): its store pages kept in its own memory."""
        self.recorder.keep_pages(mib)  # type: ignore[attr-defined]

    def decide(self, uow: UnitOfWork, request: RequestBase) -> Outcome:
        return decide(uow, request, self.rules, self.table)

    def submit(self, request: RequestBase) -> Outcome:
        """Decide and save one request on its own."""
        uow = self.unit_of_work()
        outcome = self.decide(uow, request)
        uow.commit()
        return outcome

    def verify_stream(self, stream_id: UUID) -> list[ChainProblem]:
        """Re-hash a stream from its raw stored records, byte for byte."""
        decoded: list[tuple[int, dict[str, Any] | Exception]] = []
        for stored in self.recorder.select_events(stream_id):
            try:
                record: dict[str, Any] | Exception = self.checked_record(stored)
            except Exception as error:  # a tampered record may fail in many ways
                record = error
            decoded.append((stored.originator_version, record))
        return verify_chain(str(stream_id), decoded)

    def checked_record(self, stored: StoredEvent) -> dict[str, Any]:
        """The contract record of a stored event that is exactly as the ledger wrote it.

        The hash covers the event's content, but some bytes can change without changing
        content (a timestamp's "+00:00" written "+0000"); so the stored bytes must also
        be the canonical encoding of what they decode to, with exactly the event's fields.
        """
        event: Any = self.mapper.to_domain_event(stored)
        created = stored.originator_version == 1
        expected = EVENT_FIELDS | {"originator_topic"} if created else EVENT_FIELDS
        if set(vars(event)) != expected:
            raise ValueError(f"fields {sorted(set(vars(event)) ^ expected)} differ from an event's")
        if created and not stored.topic.startswith(event.originator_topic + "."):
            raise ValueError("the stream's class differs from its first event's topic")
        if self.mapper.to_stored_event(event).state != stored.state:
            raise ValueError("stored bytes are not the canonical encoding of their content")
        return contract_record(event)

    def stream_events(self, stream_id: UUID) -> list[Stream.Event]:
        return list(self.events.get(stream_id))  # type: ignore[arg-type]

    def record_of(self, note: Notification) -> dict[str, Any]:
        """A stored notification as the contract's record, with its position.

        Read straight from the stored JSON when it is plain (no cipher, no compressor):
        decoding through the mapper into an event object and back costs more than
        publishing the event. verify_stream keeps the mapper's byte-exact path.
        """
        if self._plain_json:
            state = orjson.loads(note.state)
            stamp = state["timestamp"]["_data_"]
            return {
                "event_id": state["event_id"], "event_type": state["event_type"],
                "schema_version": state["schema_version"], "stream": str(note.originator_id),
                "stream_version": note.originator_version,
                "establishment_id": state["establishment_id"],
                "occurred_at": state["occurred_at"],
                "recorded_at": (stamp[:-6] + "Z" if len(stamp) == 32 and stamp.endswith("+00:00")
                                else iso(datetime.fromisoformat(stamp))),
                "request": state["request"], "payload": state["payload"],
                "prev_hash": state["prev_hash"], "hash": state["hash"], "position": note.id}
        event: Any = self.mapper.to_domain_event(note)
        return contract_record(event, note.id)

    def all_events(self, start: int = 1, limit: int = 1000) -> list[tuple[int, Any]]:
        """Notifications in store order with their decoded events."""
        notes = self.recorder.select_notifications(start=start, limit=limit)
        return [(n.id, self.mapper.to_domain_event(n)) for n in notes]
