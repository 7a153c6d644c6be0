"""The questions of the present, asked of the read models: what the command line and
(later) the HTTP API print."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select

from domain.identifiers import worker_stream
from projections.establishments import BAND_HISTORY, ESTABLISHMENTS
from projections.nitaqat_alerts import ALERTS
from projections.permits import PERMIT_EVENTS, PERMITS
from projections.statistics import ONLINE_CHANNELS, SERVICE_STATS
from projections.trail import TRAIL, TRAIL_WORKERS
from projections.workers import WORKERS


def service_totals(engine: Engine, month: str | None = None) -> dict[str, dict[str, int]]:
    """Per service: accepted, refused, and how many of them online or at an office."""
    stmt = select(SERVICE_STATS)
    if month:
        stmt = stmt.where(SERVICE_STATS.c.month == month)
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for r in conn.execute(stmt).mappings():
            t = out.setdefault(r["service"], {"accepted": 0, "refused": 0, "online": 0,
                                              "office": 0, "other": 0})
            t["accepted"] += r["accepted"]
            t["refused"] += r["refused"]
            n = r["accepted"] + r["refused"]
            where = ("online" if r["channel"] in ONLINE_CHANNELS
                     else "office" if r["channel"] == "office" else "other")
            t[where] += n
    return out


def establishment(engine: Engine, number: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(ESTABLISHMENTS).where(
            ESTABLISHMENTS.c.establishment_id == number)).mappings().first()
        return dict(row) if row else None


def band_history(engine: Engine, number: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(BAND_HISTORY).where(
            BAND_HISTORY.c.establishment_id == number).order_by(BAND_HISTORY.c.position))
            .mappings()]


def workforce(engine: Engine, number: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(WORKERS.c.nationality_group, WORKERS.c.status,
                                   func.count()).where(WORKERS.c.employer == number)
                            .group_by(WORKERS.c.nationality_group, WORKERS.c.status)).all()
    out: dict[str, int] = {}
    for group, status, n in rows:
        label = f"{'expatriate' if group == 'expatriate' else 'counted as Saudi'}, {status}"
        out[label] = out.get(label, 0) + n
    return out


def open_absence_reports(engine: Engine, number: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(
            WORKERS.c.worker_id, WORKERS.c.nationality, WORKERS.c.absence_filed_on).where(
            WORKERS.c.absence_filed_by == number).order_by(WORKERS.c.absence_filed_on))
            .mappings()]


def permits_expiring(engine: Engine, number: str, on: date, days: int = 30
                     ) -> list[dict[str, Any]]:
    until = (on + timedelta(days=days)).isoformat()
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(PERMITS).where(and_(
            PERMITS.c.establishment_id == number, PERMITS.c.valid_until >= on.isoformat(),
            PERMITS.c.valid_until <= until)).order_by(PERMITS.c.valid_until)).mappings()]


def alerts(engine: Engine, number: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    stmt = select(ALERTS).order_by(ALERTS.c.position.desc()).limit(limit)
    if number:
        stmt = stmt.where(ALERTS.c.establishment_id == number)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def worker(engine: Engine, worker_id: str) -> dict[str, Any] | None:
    key = str(worker_stream(worker_id))
    with engine.connect() as conn:
        row = conn.execute(select(WORKERS).where(WORKERS.c.stream == key)).mappings().first()
        if row is None:
            return None
        permit = conn.execute(select(PERMITS).where(PERMITS.c.stream == key)).mappings().first()
        history = conn.execute(select(PERMIT_EVENTS).where(PERMIT_EVENTS.c.stream == key)
                               .order_by(PERMIT_EVENTS.c.position)).mappings().all()
        touched = TRAIL_WORKERS.c
        trail = conn.execute(select(TRAIL).join(
            TRAIL_WORKERS, touched.request_id == TRAIL.c.request_id).where(
            touched.worker_id == worker_id).order_by(touched.occurred_at,
                                                     touched.request_id)).mappings().all()
    return {"worker": dict(row), "permit": dict(permit) if permit else None,
            "permit_events": [dict(h) for h in history], "requests": [dict(t) for t in trail]}
