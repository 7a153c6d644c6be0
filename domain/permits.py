"""Work permits (رخص العمل): issue, renewal, temporary and final-exit permits.

Rules from qiwa.sa/en/work-permits (official): issue within 90 days of arrival, renew
when 180 days or fewer remain, periods of 3, 6, 9 or 12 months, never cancelled once
issued. The fee is recorded on the event (Saudi Gazette via zawya.com, 9 Dec 2021).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from domain.calendar import add_months
from domain.decision import Decision
from domain.establishment import Establishment
from domain.refusals import require
from domain.worker import Worker
from domain.workforce import active_employee, iqama_valid_or_exempt, since


def _expatriate(d: Decision) -> Worker:
    w = active_employee(d, d.payload.worker_id)
    require(not w.saudi, "WORKER_NOT_EXPATRIATE", f"{w.worker_id} counts as Saudi")
    return w


def _fee(d: Decision, est: Establishment, months: int) -> dict[str, int]:
    """100 SAR a year plus the monthly levy: 700 where expatriates are no more than
    Saudis, 800 where they are more."""
    levy = (d.rules.levy_sar_a_month_high if est.expatriates > est.saudis
            else d.rules.levy_sar_a_month_low)
    fee = d.rules.permit_fee_sar_a_year * months // 12 + levy * months
    return {"levy_sar_a_month": levy, "fee_sar": fee}


def _no_valid_permit(d: Decision, w: Worker) -> None:
    require(w.permit is None or w.days_left(w.permit["valid_until"], d.today) < 0,
            "PERMIT_VALID", f"{w.worker_id} holds a permit until "
                            f"{w.permit and w.permit['valid_until']}")


def _permit(d: Decision, est: Establishment, kind: str, start: date,
            months: int) -> dict[str, Any]:
    until = add_months(start, months) - timedelta(days=1)
    return {"permit_type": kind, "months": months, "valid_from": start.isoformat(),
            "valid_until": until.isoformat(), **_fee(d, est, months)}


def issue(d: Decision) -> None:
    est = d.establishment()
    w = _expatriate(d)
    months = d.payload.months
    require(months in d.rules.permit_periods_months, "PERMIT_PERIOD",
            f"{months} months is not one of {d.rules.permit_periods_months}")
    _no_valid_permit(d, w)
    arrived = since(w.arrival_date or w.employed_since, d.today)
    require(arrived <= d.rules.permit_issue_window_days, "PERMIT_ISSUE_WINDOW",
            f"{w.worker_id} arrived {arrived} days ago")
    d.record(w, "worker.permit_issued", _permit(d, est, "standard", d.today, months))


def renew(d: Decision) -> None:
    est = d.establishment()
    w = _expatriate(d)
    months = d.payload.months
    require(months in d.rules.permit_periods_months, "PERMIT_PERIOD",
            f"{months} months is not one of {d.rules.permit_periods_months}")
    require(w.permit is not None, "PERMIT_NONE", f"{w.worker_id} holds no permit")
    assert w.permit is not None
    left = w.days_left(w.permit["valid_until"], d.today)
    require(left <= d.rules.permit_renewal_opens_days, "PERMIT_RENEWAL_NOT_OPEN",
            f"{left} days remain on the permit of {w.worker_id}")
    require(left >= -d.rules.permit_renewal_grace_days, "PERMIT_RENEWAL_LAPSED",
            f"the permit of {w.worker_id} expired {-left} days ago")
    iqama_valid_or_exempt(d, est, w)
    start = max(date.fromisoformat(w.permit["valid_until"]) + timedelta(days=1), d.today)
    d.record(w, "worker.permit_renewed", _permit(d, est, "standard", start, months))


def temporary(d: Decision) -> None:
    est = d.establishment()
    w = _expatriate(d)
    months = d.payload.months
    require(months <= d.rules.temporary_permit_max_months, "PERMIT_PERIOD",
            f"a temporary permit lasts at most {d.rules.temporary_permit_max_months} months")
    _no_valid_permit(d, w)
    d.record(w, "worker.permit_issued", _permit(d, est, "temporary", d.today, months))


def final_exit(d: Decision) -> None:
    """The employer's final-exit permit; employment ends when passports confirm."""
    w = _expatriate(d)
    d.record(w, "worker.final_exit_requested", {})
