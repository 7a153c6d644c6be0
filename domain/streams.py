"""The base of every aggregate: an eventsourcing Aggregate whose events carry the
contract's envelope (who, when, what) and extend a per-stream hash chain.

All event types of one aggregate share one event class; `event_type` names the fact and
`when()` folds it. One class keeps the stored topic stable when event types are added,
and one fold serves the decisions, the snapshots and the auditor's replay alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.chain import GENESIS, chain_hash
from domain.context import iso

SCHEMA_VERSION = 1
Folds = dict[str, Callable[[Any, dict[str, Any], Any], None]]


class Stream(Aggregate):
    class Event(Aggregate.Event):
        event_id: str
        event_type: str
        schema_version: int
        establishment_id: str | None
        occurred_at: str
        request: dict[str, Any]
        payload: dict[str, Any]
        prev_hash: str
        hash: str

        def apply(self, aggregate: Any) -> None:
            aggregate.fold(self)

    class Created(Event, Aggregate.Created):
        pass

    # event_type -> how it changes the state; filled by each subclass.
    FOLDS: ClassVar[Folds] = {}

    def __init__(self) -> None:
        self.head_hash = GENESIS
        self.last_occurred_at = ""

    def fold(self, event: Stream.Event) -> None:
        handler = self.FOLDS.get(event.event_type)
        if handler is not None:
            handler(self, event.payload, event)
        self.head_hash = event.hash
        self.last_occurred_at = event.occurred_at

    @classmethod
    def open(cls, stream_id: UUID, envelope: dict[str, Any], recorded_at: datetime) -> Any:
        body = _body(envelope, stream_id, 1, recorded_at, GENESIS)
        return cls._create(cls.Created, id=stream_id, timestamp=recorded_at,
                           prev_hash=GENESIS, hash=chain_hash(body), **envelope)

    def append(self, envelope: dict[str, Any], recorded_at: datetime) -> Stream.Event:
        body = _body(envelope, self.id, self.version + 1, recorded_at, self.head_hash)
        self.trigger_event(self.Event, timestamp=recorded_at, prev_hash=self.head_hash,
                           hash=chain_hash(body), **envelope)
        return self.pending_events[-1]  # type: ignore[return-value]


def _body(envelope: dict[str, Any], stream: UUID, version: int, recorded_at: datetime,
          prev_hash: str) -> dict[str, Any]:
    """The hashed part of an event, exactly as domain.envelope.contract_record shapes it."""
    return {**envelope, "stream": str(stream), "stream_version": version,
            "recorded_at": iso(recorded_at), "prev_hash": prev_hash}
