"""Nitaqat alerts: seed 001's promise that establishments are warned before they enter
the red band and lose services — a pre-alert when the Saudization percentage comes within
a margin of red, and an alert on entering and on leaving red.

Alerts are rows here (an outbox); consumers/alerts.py relays new ones to the alerts
topic. Each alert's id is stable (event id and kind), so a reader deduplicates by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Boolean, Column, Index, Integer, String, Table

from domain.nitaqat import ThresholdTable
from domain.rules import Rules
from projections.database import METADATA
from projections.rows import Key, Projection, Record, Rows

ALERTS = Table(
    "nitaqat_alerts", METADATA,
    Column("alert_id", String(64), primary_key=True),
    Column("establishment_id", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # near_red, entered_red, left_red
    Column("band", String(16)),
    Column("percentage_bp", Integer),
    Column("red_threshold_bp", Integer),
    Column("margin_bp", Integer),
    Column("event_id", String(36), nullable=False),
    Column("occurred_at", String(27), nullable=False),
    Column("position", Integer, nullable=False),
    Column("published", Boolean, nullable=False, default=False),
    Index("nitaqat_alerts_unpublished", "published", "position"),
    Index("nitaqat_alerts_by_establishment", "establishment_id", "position"),
)
WATCH = Table(
    "nitaqat_watch", METADATA,
    Column("establishment_id", String(16), primary_key=True),
    Column("near", Boolean, nullable=False),
)
RULES = Rules()
TABLE = ThresholdTable.shipped()
WATCHED = frozenset({"establishment.worker_joined", "establishment.worker_left",
                     "establishment.band_changed", "establishment.activity_changed"})


def reads(record: Record) -> Iterable[tuple[str, Key]]:
    if record["event_type"] in WATCHED and record["establishment_id"]:
        key = (record["establishment_id"],)
        return [("establishments", key), ("nitaqat_watch", key)]
    return []


def red_threshold_bp(est: dict[str, Any], day: date) -> int | None:
    """The percentage below which the establishment is red; None for the small ones,
    which are green with one Saudi whatever their percentage."""
    if est["headcount"] <= RULES.nitaqat_small_max_headcount or not TABLE.knows(est["activity"]):
        return None
    return TABLE.thresholds_bp(est["activity"], day.year, est["headcount"])["low_green"]


def _alert(rows: Rows, r: Record, est: dict[str, Any], kind: str,
           threshold: int | None) -> None:
    rows.append("nitaqat_alerts", {
        "alert_id": f"{r['event_id']}:{kind}", "establishment_id": r["establishment_id"],
        "kind": kind, "band": est["band"], "percentage_bp": est["percentage_bp"],
        "red_threshold_bp": threshold, "margin_bp": RULES.nitaqat_prealert_margin_bp,
        "event_id": r["event_id"], "occurred_at": r["occurred_at"], "position": r["position"],
        "published": False})


def fold(rows: Rows, record: Record) -> None:
    if record["event_type"] not in WATCHED or not record["establishment_id"]:
        return
    key = (record["establishment_id"],)
    est = rows.get("establishments", key)  # already folded for this record
    if est is None:
        return
    p = record["payload"]
    if record["event_type"] == "establishment.band_changed":
        # A first assessment (from no band) at opening is not an entry into red.
        if p["to_band"] == "red" and p["from_band"] is not None:
            _alert(rows, record, est, "entered_red", None)
        elif p["from_band"] == "red":
            _alert(rows, record, est, "left_red", None)
    threshold = red_threshold_bp(est, date.fromisoformat(record["occurred_at"][:10]))
    near = (threshold is not None and est["band"] != "red"
            and est["percentage_bp"] < threshold + RULES.nitaqat_prealert_margin_bp)
    watch = rows.get("nitaqat_watch", key)
    if near and not (watch and watch["near"]):
        _alert(rows, record, est, "near_red", threshold)
    if watch is None or watch["near"] != near:
        rows.put("nitaqat_watch", key, {"establishment_id": key[0], "near": near})


PROJECTION = Projection("nitaqat_alerts", (ALERTS, WATCH), reads, fold,
                        requires=("establishments",))
