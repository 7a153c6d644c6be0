"""Establishments now: profile, branches, weighted Saudi and expatriate headcounts,
Saudization percentage, size, band — and the band's history, each change with the event
that caused it. The band itself is the domain's (establishment.band_changed); the counts
use the same Nitaqat arithmetic the domain decides with."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import Column, Index, Integer, String, Table, Text

from domain.nitaqat import Workforce, size_category
from domain.rules import Rules
from projections.database import METADATA
from projections.rows import Key, Projection, Record, Rows

ESTABLISHMENTS = Table(
    "establishments", METADATA,
    Column("establishment_id", String(16), primary_key=True),
    Column("name", String(200)),
    Column("commercial_registration", String(10)),
    Column("activity", String(40)),
    Column("city", String(128)),
    Column("owner_account_id", String(64)),
    Column("opened_on", String(10)),
    Column("branches", Text, nullable=False, default="[]"),
    Column("saudis", Integer, nullable=False, default=0),
    Column("saudi_weight_milli", Integer, nullable=False, default=0),
    Column("disabled_saudis", Integer, nullable=False, default=0),
    Column("expatriates", Integer, nullable=False, default=0),
    Column("weighted_saudis_milli", Integer, nullable=False, default=0),
    Column("headcount", Integer, nullable=False, default=0),
    Column("percentage_bp", Integer, nullable=False, default=0),
    Column("size", String(8)),
    Column("band", String(16)),
    Column("band_since", String(27)),
    Column("average_bp", Integer),
    Column("last_wage_month", String(7)),
    Column("wage_compliance_bp", Integer),
    Column("refusals", Integer, nullable=False, default=0),
    Column("last_occurred_at", String(27)),
    Index("establishments_by_band", "band"),
)
BAND_HISTORY = Table(
    "band_history", METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("establishment_id", String(16), nullable=False),
    Column("from_band", String(16)),
    Column("to_band", String(16)),
    Column("percentage_bp", Integer),
    Column("average_bp", Integer),
    Column("headcount", Integer),
    Column("size", String(8)),
    Column("cause_event_id", String(36)),
    Column("occurred_at", String(27)),
    Column("position", Integer),
    Index("band_history_by_establishment", "establishment_id", "position"),
)
RULES = Rules()


def reads(record: Record) -> Iterable[tuple[str, Key]]:
    number = record["establishment_id"]
    if number and record["event_type"].startswith(("establishment.", "request.rejected")):
        return [("establishments", (number,))]
    return []


def _opened(p: dict[str, Any], r: Record) -> dict[str, Any]:
    return {"establishment_id": r["establishment_id"], "name": p["name"],
            "commercial_registration": p["commercial_registration"],
            "activity": p["activity"], "city": p["city"],
            "owner_account_id": p["owner_account_id"], "opened_on": r["occurred_at"][:10],
            "branches": "[]", "saudis": 0, "saudi_weight_milli": 0, "disabled_saudis": 0,
            "expatriates": 0, "weighted_saudis_milli": 0, "headcount": 0,
            "percentage_bp": 0, "size": size_category(0), "band": None, "band_since": None,
            "average_bp": None, "last_wage_month": None, "wage_compliance_bp": None,
            "refusals": 0}


def _workforce(row: dict[str, Any], c: dict[str, Any], sign: int,
               p: dict[str, Any]) -> dict[str, Any]:
    current = Workforce(row["saudis"], row["saudi_weight_milli"], row["disabled_saudis"],
                        row["expatriates"])
    wf = current.moved(c, sign)
    return {"saudis": wf.saudis, "saudi_weight_milli": wf.saudi_weight_milli,
            "disabled_saudis": wf.disabled_saudis, "expatriates": wf.expatriates,
            "weighted_saudis_milli": wf.weighted_saudis_milli(RULES),
            "headcount": wf.headcount, "percentage_bp": p["percentage_bp"],
            "size": size_category(wf.headcount)}


def _changes(row: dict[str, Any], p: dict[str, Any], r: Record) -> dict[str, Any]:
    kind = r["event_type"]
    if kind == "establishment.worker_joined":
        return _workforce(row, p["contribution"], +1, p)
    if kind == "establishment.worker_left":
        return _workforce(row, p["contribution"], -1 if p["counted"] else 0, p)
    if kind == "establishment.band_changed":
        return {"band": p["to_band"], "band_since": r["occurred_at"],
                "average_bp": p["average_bp"]}
    if kind == "establishment.branch_added":
        branches = [*orjson.loads(row["branches"]), p["branch_id"]]
        return {"branches": orjson.dumps(branches).decode()}
    changes: dict[str, Callable[[], dict[str, Any]]] = {
        "establishment.activity_changed": lambda: {"activity": p["to_activity"]},
        "establishment.wage_file_uploaded": lambda: {
            "last_wage_month": max(p["month"], row["last_wage_month"] or ""),
            "wage_compliance_bp": p["compliance_bp"]},
        "request.rejected": lambda: {"refusals": row["refusals"] + 1},
    }
    return changes.get(kind, dict)()


def fold(rows: Rows, record: Record) -> None:
    number = record["establishment_id"]
    kind = record["event_type"]
    if not number or not kind.startswith(("establishment.", "request.rejected")):
        return
    key = (number,)
    if kind == "establishment.file_opened":
        row: dict[str, Any] | None = _opened(record["payload"], record)
    else:
        row = rows.get("establishments", key)
        if row is None:
            return
        row.update(_changes(row, record["payload"], record))
    assert row is not None
    row["last_occurred_at"] = record["occurred_at"]
    rows.put("establishments", key, row)
    if kind == "establishment.band_changed":
        _band_history(rows, record)


def _band_history(rows: Rows, r: Record) -> None:
    p = r["payload"]
    rows.append("band_history", {
        "event_id": r["event_id"], "establishment_id": r["establishment_id"],
        "from_band": p["from_band"], "to_band": p["to_band"],
        "percentage_bp": p["percentage_bp"], "average_bp": p["average_bp"],
        "headcount": p["headcount"], "size": p["size"], "cause_event_id": p["cause_event_id"],
        "occurred_at": r["occurred_at"], "position": r["position"]})


PROJECTION = Projection("establishments", (ESTABLISHMENTS, BAND_HISTORY), reads, fold)
