"""Work permits: every permit issued or renewed, and each worker's current one — which
permits expire this month, what they cost."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, Index, Integer, String, Table

from projections.database import METADATA
from projections.rows import Key, Projection, Record, Rows

PERMITS = Table(
    "permits", METADATA,
    Column("stream", String(36), primary_key=True),  # the worker's stream
    Column("worker_id", String(10)),
    Column("establishment_id", String(16)),
    Column("permit_type", String(16)),
    Column("first_issued_on", String(10)),
    Column("valid_from", String(10)),
    Column("valid_until", String(10)),
    Column("renewals", Integer, nullable=False, default=0),
    Column("last_event_id", String(36)),
    Index("permits_by_expiry", "valid_until"),
    Index("permits_by_establishment", "establishment_id", "valid_until"),
)
PERMIT_EVENTS = Table(
    "permit_events", METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("stream", String(36), nullable=False),
    Column("worker_id", String(10)),
    Column("establishment_id", String(16)),
    Column("kind", String(8)),  # issued, renewed
    Column("permit_type", String(16)),
    Column("months", Integer),
    Column("valid_from", String(10)),
    Column("valid_until", String(10)),
    Column("fee_sar", Integer),
    Column("levy_sar_a_month", Integer),
    Column("occurred_at", String(27)),
    Column("position", Integer),
    Index("permit_events_by_worker", "stream", "position"),
)
KINDS = {"worker.permit_issued": "issued", "worker.permit_renewed": "renewed"}
# The permit follows the worker: to the new employer on a transfer (who renews it),
# to no establishment once the worker has left the kingdom.
MOVES = {"worker.service_transferred", "worker.left_kingdom"}


def reads(record: Record) -> Iterable[tuple[str, Key]]:
    if record["event_type"] in KINDS:
        return [("permits", (record["stream"],)), ("workers", (record["stream"],))]
    if record["event_type"] in MOVES:
        return [("permits", (record["stream"],))]
    return []


def _moved(rows: Rows, record: Record) -> None:
    current = rows.get("permits", (record["stream"],))
    if current is None:
        return
    current["establishment_id"] = record["payload"].get("to_establishment_id")
    rows.put("permits", (record["stream"],), current)


def fold(rows: Rows, record: Record) -> None:
    kind = record["event_type"]
    key = (record["stream"],)
    if kind in MOVES:
        _moved(rows, record)
        return
    if kind not in KINDS:
        return
    p = record["payload"]
    current = rows.get("permits", key)
    worker = rows.get("workers", key)
    worker_id = worker["worker_id"] if worker else None
    renewed = KINDS[kind] == "renewed"
    rows.put("permits", key, {
        "stream": record["stream"], "worker_id": worker_id,
        "establishment_id": record["establishment_id"], "permit_type": p["permit_type"],
        "first_issued_on": (current["first_issued_on"] if current and renewed
                            else p["valid_from"]),
        "valid_from": p["valid_from"], "valid_until": p["valid_until"],
        "renewals": (current["renewals"] + 1 if current and renewed else 0),
        "last_event_id": record["event_id"]})
    rows.append("permit_events", {
        "event_id": record["event_id"], "stream": record["stream"], "worker_id": worker_id,
        "establishment_id": record["establishment_id"], "kind": KINDS[kind],
        "permit_type": p["permit_type"], "months": p["months"], "valid_from": p["valid_from"],
        "valid_until": p["valid_until"], "fee_sar": p["fee_sar"],
        "levy_sar_a_month": p["levy_sar_a_month"], "occurred_at": record["occurred_at"],
        "position": record["position"]})


PROJECTION = Projection("permits", (PERMITS, PERMIT_EVENTS), reads, fold,
                        requires=("workers",))
