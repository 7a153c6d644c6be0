"""Wage protection (حماية الأجور, Mudad): one sealed wage file a month per establishment;
compliance is the share of workers paid as recorded (hrsd.gov.sa, official)."""

from __future__ import annotations

from domain.decision import Decision
from domain.refusals import require


def upload(d: Decision) -> None:
    est = d.establishment()
    p = d.payload
    require(p.month <= d.today.strftime("%Y-%m"), "WPS_MONTH_FUTURE",
            f"{p.month} has not begun")
    require(p.month not in est.wage_files, "WPS_MONTH_DUPLICATE",
            f"{est.file_number} already filed {p.month}")
    bp = 10_000 if p.workers_total == 0 else p.workers_paid_as_recorded * 10_000 // p.workers_total
    d.record(est, "establishment.wage_file_uploaded",
             {"month": p.month, "workers_total": p.workers_total,
              "workers_paid_as_recorded": p.workers_paid_as_recorded, "compliance_bp": bp})
