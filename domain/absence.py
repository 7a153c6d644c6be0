"""Absence-from-work reports (بلاغ تغيب عن العمل).

Filed only for an active expatriate whose permit and iqama each have 60 days left, one
open report a worker (alothmanlaw.sa; absher.sa). Filing detaches the worker: for 60
days "discontinued from work", free to transfer or leave, then "absent" (Argaam,
23 Oct 2022). Cancelled only by the filer within the window (hrsd.gov.sa; absher.sa).
"""

from __future__ import annotations

from domain.decision import Decision
from domain.refusals import require
from domain.workforce import active_employee, count_in, count_out, since


def report(d: Decision) -> None:
    est = d.establishment()
    w = d.employee(d.payload.worker_id)
    require(w.absence is None, "ABSENCE_OPEN", f"{w.worker_id} already has an open report")
    w = active_employee(d, d.payload.worker_id)
    require(not w.saudi, "WORKER_NOT_EXPATRIATE", f"{w.worker_id} counts as Saudi")
    minimum = d.rules.absence_min_document_days
    permit_left = w.days_left(w.permit["valid_until"] if w.permit else None, d.today)
    iqama_left = w.days_left(w.iqama_expiry, d.today)
    require(permit_left >= minimum and iqama_left >= minimum, "ABSENCE_DOCUMENTS",
            f"permit has {permit_left} and iqama {iqama_left} days left; {minimum} needed")
    last_seen = d.payload.last_seen_on
    d.record(w, "worker.absence_reported",
             {"last_seen_on": last_seen.isoformat() if last_seen else None})
    count_out(d, est, w, "absence_report", counted=True)


def cancel(d: Decision) -> None:
    est = d.establishment()
    w = d.worker(d.payload.worker_id)
    require(w.absence is not None, "ABSENCE_NONE", f"{w.worker_id} has no open report")
    assert w.absence is not None
    require(w.absence["filed_by"] == est.file_number, "ABSENCE_NOT_FILER",
            f"the report was filed by {w.absence['filed_by']}")
    age = since(w.absence["filed_on"], d.today)
    window = d.rules.absence_cancel_window_days
    require(age <= window, "ABSENCE_CANCEL_WINDOW",
            f"filed {age} days ago; the window is {window} days")
    d.record(w, "worker.absence_cancelled", {"report_event_id": w.absence["event_id"]})
    count_in(d, est, w, "absence_cancelled")
