"""Service statistics: per service, per month (Gregorian and Hijri) and per channel, the
requests accepted and refused — the categories of seed 002's ten-month table and seed
000's online shares. A request is counted once, by the event that created its trail row."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import lru_cache

from hijridate import Gregorian
from sqlalchemy import Column, Integer, String, Table

from projections.database import METADATA
from projections.rows import Key, Projection, Record, Rows

SERVICE_STATS = Table(
    "service_stats", METADATA,
    Column("service", String(48), primary_key=True),
    Column("month", String(7), primary_key=True),  # Gregorian YYYY-MM
    Column("hijri_month", String(7), primary_key=True),  # Hijri YYYY-MM
    Column("channel", String(12), primary_key=True),
    Column("accepted", Integer, nullable=False, default=0),
    Column("refused", Integer, nullable=False, default=0),
)
# Done online, as seed 000 counts it: through the portal or its API, not at an office.
ONLINE_CHANNELS = frozenset({"portal", "api"})


@lru_cache(maxsize=4096)
def hijri_month(day: str) -> str:
    g = date.fromisoformat(day)
    h = Gregorian(g.year, g.month, g.day).to_hijri()
    return f"{h.year:04d}-{h.month:02d}"


def _key(record: Record) -> Key:
    day = record["occurred_at"][:10]
    q = record["request"]
    return (q["service"], day[:7], hijri_month(day), q["channel"])


def reads(record: Record) -> Iterable[tuple[str, Key]]:
    return [("trail", (record["request"]["request_id"],)), ("service_stats", _key(record))]


def fold(rows: Rows, record: Record) -> None:
    trail = rows.get("trail", (record["request"]["request_id"],))
    if trail is None or trail["first_position"] != record["position"]:
        return  # not the request's first event: it was counted already
    key = _key(record)
    row = rows.get("service_stats", key) or dict(
        zip(("service", "month", "hijri_month", "channel"), key, strict=True),
        accepted=0, refused=0)
    row[trail["outcome"]] += 1
    rows.put("service_stats", key, row)


PROJECTION = Projection("statistics", (SERVICE_STATS,), reads, fold, requires=("trail",))
