"""Workers now: employer, branch, profession, nationality group, status, permit and
absence-report state — who works for an establishment, and who is absent."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Boolean, Column, Index, Integer, String, Table

from projections.database import METADATA
from projections.rows import Key, Projection, Record, Rows

WORKERS = Table(
    "workers", METADATA,
    Column("stream", String(36), primary_key=True),
    Column("worker_id", String(10), nullable=False, unique=True),
    Column("id_kind", String(16)),
    Column("nationality", String(3)),
    Column("nationality_group", String(32)),  # saudi, a counted-as-Saudi category, expatriate
    Column("profession", String(40)),
    Column("employer", String(16)),
    Column("branch_id", String(128)),
    Column("status", String(24)),  # active, absence_reported, final_exit_requested, ...
    Column("permit_type", String(16)),
    Column("permit_valid_until", String(10)),
    Column("iqama_expiry", String(10)),
    Column("absence_filed_by", String(16)),
    Column("absence_filed_on", String(10)),
    Column("imprisoned", Boolean, nullable=False, default=False),
    Column("dependents", Integer, nullable=False, default=0),
    Column("wage_sar", Integer),
    Column("employed_since", String(10)),
    Column("last_event_id", String(36)),
    Index("workers_by_employer", "employer", "status"),
    # The establishment's open absence reports (projections/queries.py): without it a
    # scan of every worker, 0.63 s from a cold disk at F = 0.2.
    Index("workers_by_absence_filer", "absence_filed_by", "absence_filed_on"),
)


def _joined(row: dict[str, Any] | None, p: dict[str, Any], r: Record) -> dict[str, Any]:
    category = p.get("saudi_category")
    return {
        "worker_id": p["worker_id"], "id_kind": p.get("id_kind"),
        "nationality": p["nationality"],
        "nationality_group": category or "expatriate", "profession": p["profession"],
        "employer": r["establishment_id"], "branch_id": p.get("branch_id"), "status": "active",
        "permit_type": None, "permit_valid_until": None, "iqama_expiry": p.get("iqama_expiry"),
        "absence_filed_by": None, "absence_filed_on": None,
        "imprisoned": bool(row and row["imprisoned"]),
        "dependents": row["dependents"] if row else 0, "wage_sar": p["wage_sar"],
        "employed_since": r["occurred_at"][:10], "last_event_id": r["event_id"],
    }


def _changes(row: dict[str, Any], p: dict[str, Any], r: Record) -> dict[str, Any]:
    kind = r["event_type"]
    if kind in ("worker.permit_issued", "worker.permit_renewed"):
        return {"permit_type": p["permit_type"], "permit_valid_until": p["valid_until"]}
    if kind == "worker.absence_reported":
        return {"status": "absence_reported", "absence_filed_by": r["establishment_id"],
                "absence_filed_on": r["occurred_at"][:10]}
    if kind == "worker.absence_cancelled":
        return {"status": "active", "absence_filed_by": None, "absence_filed_on": None}
    if kind == "worker.service_transferred":
        return {"employer": p["to_establishment_id"], "branch_id": None, "status": "active",
                "absence_filed_by": None, "absence_filed_on": None,
                "employed_since": r["occurred_at"][:10]}
    if kind == "worker.left_kingdom":
        status = "left_kingdom" if p["kind"] == "exit_without_return" else "final_exit"
        return {"status": status, "employer": None, "absence_filed_by": None,
                "absence_filed_on": None}
    return _small_changes(row, p, kind)


def _small_changes(row: dict[str, Any], p: dict[str, Any], kind: str) -> dict[str, Any]:
    changes: dict[str, Callable[[], dict[str, Any]]] = {
        "worker.final_exit_requested": lambda: {"status": "final_exit_requested"},
        "worker.final_exit_withdrawn": lambda: {"status": "active"},
        "worker.profession_changed": lambda: {"profession": p.get("to_profession")},
        "worker.branch_transferred": lambda: {"branch_id": p.get("to_branch_id")},
        "worker.iqama_renewed": lambda: {"iqama_expiry": p.get("iqama_expiry")},
        "worker.imprisonment_flagged": lambda: {"imprisoned": p.get("imprisoned")},
        "worker.dependents_transferred": lambda: {
            "dependents": row["dependents"] + p.get("dependents", 0)},
    }
    return changes.get(kind, dict)()


def reads(record: Record) -> Iterable[tuple[str, Key]]:
    return [("workers", (record["stream"],))] if _is_worker(record) else []


def _is_worker(record: Record) -> bool:
    return bool(record["event_type"].startswith("worker."))


def fold(rows: Rows, record: Record) -> None:
    """Worker events live in the worker's stream, so the stream id is the row's key (the
    CLI finds it from a worker id with domain.identifiers.worker_stream)."""
    if not _is_worker(record):
        return
    key = (record["stream"],)
    row = rows.get("workers", key)
    if record["event_type"] == "worker.joined":
        rows.put("workers", key, {"stream": record["stream"],
                                  **_joined(row, record["payload"], record)})
        return
    if row is None:
        return
    row.update(_changes(row, record["payload"], record), last_event_id=record["event_id"])
    rows.put("workers", key, row)


PROJECTION = Projection("workers", (WORKERS,), reads, fold)
