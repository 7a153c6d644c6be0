"""An establishment's history, as the records of the event contract, from the event
store (through its index) or from the Kafka topic — the same records either way.

The history is the establishment's own events and the whole streams of the workers who
appear in them (a worker who transferred in brings the stream that began elsewhere), cut
at a moment or at a version of the establishment's stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import and_, bindparam, func, select

from consumers.codec import decode
from consumers.inspection import committed_messages
from domain.collector import collector_paused
from domain.identifiers import establishment_stream
from domain.ledger import Ledger
from domain.persistence import EVENT_INDEX, read_apart

Record = dict[str, Any]


@dataclass(frozen=True)
class Cutoff:
    """Up to a moment (occurred_at, UTC ISO 8601) or up to a store position."""

    time: str | None = None
    position: int | None = None

    def admits(self, occurred_at: str, position: int) -> bool:
        if self.time is not None and occurred_at > self.time:
            return False
        return self.position is None or position <= self.position


def _engine(ledger: Ledger) -> Any:
    return ledger.recorder.datastore.engine  # type: ignore[attr-defined]


def version_cutoff(ledger: Ledger, number: str, version: int) -> Cutoff:
    """The position at which the establishment's stream reached `version`."""
    stream = str(establishment_stream(number))
    with _engine(ledger).connect() as conn:
        position = conn.execute(select(EVENT_INDEX.c.position).where(and_(
            EVENT_INDEX.c.stream == stream, EVENT_INDEX.c.version == version))).scalar()
    if position is None:
        raise LookupError(f"version: establishment {number} has no version {version}")
    return Cutoff(position=int(position))


# One statement, compiled once (an expanding parameter): compiling an IN of 500 literals
# a chunk cost more than running it for the largest establishments.
STREAMS = select(EVENT_INDEX.c.position, EVENT_INDEX.c.occurred_at).where(
    EVENT_INDEX.c.stream.in_(bindparam("streams", expanding=True)))


@collector_paused
def from_store(ledger: Ledger, number: str, cutoff: Cutoff) -> list[Record]:
    engine = _engine(ledger)
    idx = EVENT_INDEX.c
    with engine.connect() as conn:
        own = conn.execute(select(idx.position, idx.stream, idx.event_type, idx.occurred_at)
                           .where(idx.establishment_id == number)).all()
    own = [r for r in own if cutoff.admits(r.occurred_at, r.position)]
    workers = sorted({r.stream for r in own if r.event_type.startswith("worker.")})
    chunks = [workers[start:start + 500] for start in range(0, len(workers), 500)]
    # Each worker's stream is a range of its own in the index: several read at once, as
    # the events are (domain/persistence.py READERS: a cold disk answers them faster).
    theirs = read_apart(ledger.recorder.readers,  # type: ignore[attr-defined]
                        partial(_positions, engine), chunks)
    positions = sorted({r.position for r in own}
                       | {r.position for r in theirs if cutoff.admits(r.occurred_at,
                                                                       r.position)})
    notes = ledger.recorder.select_notifications_by_ids(positions)  # type: ignore[attr-defined]
    return [ledger.record_of(n) for n in notes]


def _positions(engine: Any, _: int, chunks: list[list[str]]) -> list[Any]:
    with engine.connect() as conn:
        return [row for streams in chunks
                for row in conn.execute(STREAMS, {"streams": streams}).all()]


def from_records(records: list[Record], number: str, cutoff: Cutoff) -> list[Record]:
    """The same selection over records already read, e.g. a copy of the topic."""
    own = [r for r in records if r["establishment_id"] == number
           and cutoff.admits(r["occurred_at"], r["position"])]
    workers = {r["stream"] for r in own if r["event_type"].startswith("worker.")}
    picked = {r["position"]: r for r in own}
    for r in records:
        if r["stream"] in workers and cutoff.admits(r["occurred_at"], r["position"]):
            picked[r["position"]] = r
    return [picked[p] for p in sorted(picked)]


def from_kafka(bootstrap: str, topic: str, number: str, cutoff: Cutoff) -> list[Record]:
    records = [decode(m.value, m.headers)
               for _, messages in committed_messages(bootstrap, topic) for m in messages]
    return from_records(sorted(records, key=lambda r: r["position"]), number, cutoff)


def last_position(ledger: Ledger) -> int:
    with _engine(ledger).connect() as conn:
        return int(conn.execute(select(func.max(EVENT_INDEX.c.position))).scalar() or 0)
