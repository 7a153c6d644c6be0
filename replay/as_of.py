"""An establishment as it was: its history folded through the same projection folds
that build the live read models, in memory (DESIGN.md: one event-to-state function
serves the live projection and the replay alike)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.collector import collector_paused
from projections.catalog import with_requirements
from projections.rows import MemoryRows, fold_all

Record = dict[str, Any]
STATE = with_requirements(["establishments", "permits", "workers", "trail"])


@dataclass
class EstablishmentAsOf:
    establishment_id: str
    establishment: dict[str, Any] | None
    workers: list[dict[str, Any]] = field(default_factory=list)
    permits: list[dict[str, Any]] = field(default_factory=list)
    band_history: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # one row a request
    events: int = 0
    last_position: int = 0


@collector_paused
def as_of(number: str, records: list[Record]) -> EstablishmentAsOf:
    rows = MemoryRows()
    fold_all(STATE, rows, records)
    workers = [w for w in rows.tables.get("workers", {}).values() if w["employer"] == number]
    streams = {w["stream"] for w in workers}
    permits = [p for k, p in rows.tables.get("permits", {}).items() if k[0] in streams]
    own = {r["request"]["request_id"] for r in records if r["establishment_id"] == number}
    timeline = sorted((t for t in rows.tables.get("trail", {}).values()
                       if t["request_id"] in own), key=lambda t: t["first_position"])
    return EstablishmentAsOf(
        establishment_id=number,
        establishment=rows.tables.get("establishments", {}).get((number,)),
        workers=sorted(workers, key=lambda w: w["worker_id"]),
        permits=sorted(permits, key=lambda p: p["worker_id"] or ""),
        band_history=[h for h in rows.history.get("band_history", [])
                      if h["establishment_id"] == number],
        timeline=timeline, events=len(records),
        last_position=records[-1]["position"] if records else 0)
