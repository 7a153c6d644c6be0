"""The counterfactual: the ledger as if a leaked credential's requests had never been
made, decided again through the same domain rules — and how it differs from what is.

The store is copied, event for event, up to the first excluded request: nothing before
it can differ. Every later request is then taken back from its events (they carry what
was asked) and decided again in its original order into the copy, except the excluded
ones. Later requests may now be decided differently — a transfer that never happened
leaves a worker a later renewal can reach — which is the point.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import and_, select

from domain.ingest import IngestReport, ingest
from domain.ledger import Ledger
from domain.persistence import EVENT_INDEX
from domain.requests import request_of
from replay.as_of import EstablishmentAsOf, as_of
from replay.history import Cutoff, from_store

Record = dict[str, Any]


@dataclass(frozen=True)
class Exclusion:
    """The requests to take out: an account's, since a moment, optionally only from
    given devices or sessions (the thief's, when the owner kept working meanwhile)."""

    account_id: str
    since: str  # UTC, ISO 8601
    devices: frozenset[str] = frozenset()
    sessions: frozenset[str] = frozenset()

    def matches(self, row: Any) -> bool:
        return ((not self.devices or row.device_id in self.devices)
                and (not self.sessions or row.session_id in self.sessions))


@dataclass
class Counterfactual:
    excluded: list[str]  # request ids, in order
    excluded_positions: list[int]
    establishments: list[str]  # the establishments the excluded requests touched
    ledger: Ledger  # the counterfactual store
    replayed: IngestReport | None = None
    differences: list[dict[str, Any]] = field(default_factory=list)


def excluded_requests(ledger: Ledger, exclusion: Exclusion) -> tuple[list[str], list[int]]:
    idx = EVENT_INDEX.c
    with ledger.recorder.datastore.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(select(idx.position, idx.request_id, idx.device_id,
                                   idx.session_id).where(and_(
            idx.account_id == exclusion.account_id, idx.occurred_at >= exclusion.since))
            .order_by(idx.position)).all()
    chosen = [r for r in rows if exclusion.matches(r)]
    ids = list(dict.fromkeys(r.request_id for r in chosen))
    return ids, [r.position for r in chosen]


def _notes_from(ledger: Ledger, start: int) -> Iterator[Sequence[Any]]:
    while notes := ledger.recorder.select_notifications(start=start, limit=5000):
        yield notes
        start = notes[-1].id + 1


def _copy_before(actual: Ledger, copy: Ledger, position: int) -> None:
    """Every event before `position`, re-saved as it is (same content, same order)."""
    for notes in _notes_from(actual, 1):
        events = [actual.mapper.to_domain_event(n) for n in notes if n.id < position]
        if events:
            copy.commit(events, [])  # type: ignore[arg-type]
        if notes[-1].id >= position:
            return


def _requests_after(actual: Ledger, position: int, skip: set[str]) -> Iterator[bytes]:
    """Each request once, in order, from its first event (a request's events are
    recorded together, so they are adjacent in the log)."""
    last = None
    for notes in _notes_from(actual, position):
        for note in notes:
            record = actual.record_of(note)
            request_id = record["request"]["request_id"]
            if request_id != last and request_id not in skip:
                yield orjson.dumps(request_of(record))
            last = request_id


def build(actual: Ledger, exclusion: Exclusion, workdir: Path) -> Counterfactual:
    ids, positions = excluded_requests(actual, exclusion)
    copy_url = f"sqlite:///{workdir / 'counterfactual.sqlite'}"
    (workdir / "counterfactual.sqlite").unlink(missing_ok=True)
    copy = Ledger(copy_url, rules=actual.rules, table=actual.table)
    result = Counterfactual(ids, positions, [], copy)
    if not ids:
        return result
    first = positions[0]
    _copy_before(actual, copy, first)
    result.replayed = ingest(copy, _requests_after(actual, first, set(ids)))
    notes = actual.recorder.select_notifications_by_ids(positions)  # type: ignore[attr-defined]
    touched = {actual.record_of(n)["establishment_id"] for n in notes}
    result.establishments = sorted(e for e in touched if e)
    return result


def state(ledger: Ledger, number: str) -> EstablishmentAsOf:
    return as_of(number, from_store(ledger, number, Cutoff()))


def differences(actual: Ledger, counterfactual: Ledger, numbers: list[str]
                ) -> list[dict[str, Any]]:
    """Per establishment and worker: what is, and what would have been."""
    out: list[dict[str, Any]] = []
    for number in numbers:
        now, then = state(actual, number), state(counterfactual, number)
        out += _worker_differences(number, now, then)
        for key in ("headcount", "saudis", "expatriates", "band"):
            a = (now.establishment or {}).get(key)
            b = (then.establishment or {}).get(key)
            if a != b:
                out.append({"establishment_id": number, "subject": key, "actual": a,
                            "counterfactual": b})
    return out


def _worker_differences(number: str, now: EstablishmentAsOf, then: EstablishmentAsOf
                        ) -> list[dict[str, Any]]:
    actual = {w["worker_id"]: w for w in now.workers}
    would = {w["worker_id"]: w for w in then.workers}
    out = []
    for worker_id in sorted(set(actual) | set(would)):
        a, b = actual.get(worker_id), would.get(worker_id)
        a_state = _worker_state(a)
        b_state = _worker_state(b)
        if a_state != b_state:
            out.append({"establishment_id": number, "subject": f"worker {worker_id}",
                        "actual": a_state, "counterfactual": b_state})
    return out


def _worker_state(w: dict[str, Any] | None) -> str:
    if w is None:
        return "not employed here"
    if w["status"] == "absence_reported":
        return f"reported absent on {w['absence_filed_on']}"
    return str(w["status"]).replace("_", " ")
