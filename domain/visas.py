"""Visas and recruitment requests: what an establishment may bring in.

Band gates (red loses new visas; visas need medium green or better) are applied by
domain/eligibility.py before these handlers run.
"""

from __future__ import annotations

from domain.decision import Decision
from domain.refusals import require
from domain.worker import GONE


def issue(d: Decision) -> None:
    est = d.establishment()
    p = d.payload
    require(p.visa_id not in est.visas, "VISA_EXISTS", f"visa {p.visa_id} exists")
    d.record(est, "establishment.visa_issued", p.model_dump(mode="json"))


def cancel(d: Decision) -> None:
    est = d.establishment()
    visa_id = d.payload.visa_id
    require(est.visas.get(visa_id) == "issued", "VISA_UNKNOWN",
            f"{est.file_number} has no open visa {visa_id}")
    d.record(est, "establishment.visa_cancelled", {"visa_id": visa_id})


def compensatory(d: Decision) -> None:
    """A compensatory visa replaces a worker who left the establishment's service."""
    est = d.establishment()
    w = d.worker(d.payload.for_worker_id)
    require(w.status in GONE and w.last_employer == est.file_number, "VISA_NO_DEPARTURE",
            f"{w.worker_id} did not leave {est.file_number}'s service")
    d.record(est, "establishment.compensatory_visa_requested", {"for_worker_id": w.worker_id})


def balance(d: Decision) -> None:
    d.record(d.establishment(), "establishment.recruitment_balance_requested",
             {"count": d.payload.count})


def disbursement(d: Decision) -> None:
    d.record(d.establishment(), "establishment.recruitment_disbursement_requested",
             {"count": d.payload.count})
