"""What a service handler works with: the request, its moment, the rules, and the
aggregates it may load and append to.

Handlers check first and record last. `record` refuses to run after a refusal was
raised, and a refusal after a recorded event is a programming error: a refused request
must leave nothing but its refusal.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, TypeVar

from domain.account import Account
from domain.context import iso
from domain.establishment import Establishment
from domain.identifiers import account_stream, establishment_stream, event_id, worker_stream
from domain.nitaqat import Assessment, ThresholdTable, assess
from domain.refusals import refuse
from domain.requests import RequestBase
from domain.rules import Rules
from domain.streams import SCHEMA_VERSION, Stream
from domain.unit_of_work import UnitOfWork
from domain.worker import Worker

S = TypeVar("S", bound=Stream)


class Decision:
    def __init__(self, uow: UnitOfWork, request: RequestBase, rules: Rules,
                 table: ThresholdTable) -> None:
        self.uow = uow
        self.request = request
        self.payload: Any = request.payload
        self.rules = rules
        self.table = table
        self.at: datetime = request.occurred_at
        self.today: date = request.occurred_at.date()
        self.occurred_at = iso(request.occurred_at)
        self.context = request.as_record()
        self.events: list[Stream.Event] = []
        self.establishments: dict[str, Establishment] = {}
        self._assessments: dict[tuple[str, int], Assessment] = {}

    # -- loading -------------------------------------------------------------------
    def establishment(self, file_number: str | None = None) -> Establishment:
        number = file_number or self.request.establishment_id
        found = self.find_establishment(number) if number else None
        if found is None:
            refuse("ESTABLISHMENT_UNKNOWN", f"no establishment has file number {number}")
        return found

    def find_establishment(self, number: str) -> Establishment | None:
        found = self.uow.get(Establishment, establishment_stream(number))
        if found is not None:
            self.establishments[number] = found
        return found

    def worker(self, worker_id: str) -> Worker:
        found = self.uow.get(Worker, worker_stream(worker_id))
        if found is None:
            refuse("WORKER_UNKNOWN", f"no worker has id {worker_id}")
        return found

    def employee(self, worker_id: str) -> Worker:
        """A worker of the requesting establishment (refused otherwise)."""
        worker = self.worker(worker_id)
        if not worker.employed_by(self.request.establishment_id or ""):
            refuse("WORKER_NOT_EMPLOYEE",
                   f"worker {worker_id} is not employed by {self.request.establishment_id}")
        return worker

    def account(self, account_id: str) -> Account | None:
        return self.uow.get(Account, account_stream(account_id))

    def assessment(self, est: Establishment) -> Assessment:
        key = (est.file_number, est.version)
        if key not in self._assessments:
            self._assessments[key] = self._assess(est)
        return self._assessments[key]

    def _assess(self, est: Establishment) -> Assessment:
        return assess(workforce=est.workforce, samples=est.samples, activity=est.activity,
                      day=self.today, owner_counts_as_saudi=est.owner_counts_as_saudi,
                      table=self.table, rules=self.rules)

    # -- recording -----------------------------------------------------------------
    def envelope(self, event_type: str, payload: dict[str, Any],
                 establishment_id: str | None, stream: uuid.UUID,
                 version: int) -> dict[str, Any]:
        return {
            "event_id": event_id(stream, version),
            "event_type": event_type,
            "schema_version": SCHEMA_VERSION,
            "establishment_id": establishment_id,
            "occurred_at": self.occurred_at,
            "request": self.context,
            "payload": payload,
        }

    def record(self, aggregate: Stream, event_type: str, payload: dict[str, Any],
               establishment_id: str | None = None) -> Stream.Event:
        owner = establishment_id if establishment_id is not None else self._default_key()
        envelope = self.envelope(event_type, payload, owner, aggregate.id, aggregate.version + 1)
        event = self.uow.append(aggregate, envelope)
        self.events.append(event)
        return event

    def open(self, kind: type[S], stream_id: uuid.UUID, event_type: str,
             payload: dict[str, Any], establishment_id: str | None = None) -> S:
        owner = establishment_id if establishment_id is not None else self._default_key()
        envelope = self.envelope(event_type, payload, owner, stream_id, 1)
        aggregate = self.uow.open(kind, stream_id, envelope)
        self.events.append(self.uow.pending[-1])
        return aggregate

    def _default_key(self) -> str | None:
        return self.request.establishment_id
