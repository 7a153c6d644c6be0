"""Workers joining, changing and leaving, and how each move changes an establishment's
Nitaqat counts. The percentage after each move is on the event, so a reader can chart
the weekly series without recomputing the workforce.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.decision import Decision
from domain.establishment import Establishment
from domain.identifiers import worker_id_kind, worker_stream
from domain.nitaqat import at_least, contribution
from domain.refusals import refuse, require
from domain.worker import EXIT_REQUESTED, GONE, Worker


def worker_contribution(d: Decision, w: Worker) -> dict[str, Any]:
    return contribution(saudi=w.saudi, wage_sar=w.wage_sar, part_time=w.part_time,
                        disabled=w.disabled, rules=d.rules).as_payload()


def _percentage_after(d: Decision, est: Establishment, c: dict[str, Any], sign: int) -> int:
    return est.workforce.moved(c, sign).percentage_bp(d.rules)


def count_in(d: Decision, est: Establishment, w: Worker, via: str, **extra: Any) -> None:
    c = worker_contribution(d, w)
    d.record(est, "establishment.worker_joined",
             {"worker_id": w.worker_id, "via": via, "contribution": c,
              "percentage_bp": _percentage_after(d, est, c, +1), **extra},
             establishment_id=est.file_number)


def count_out(d: Decision, est: Establishment, w: Worker, reason: str, *, counted: bool,
              **extra: Any) -> None:
    c = worker_contribution(d, w)
    pct = _percentage_after(d, est, c, -1) if counted else est.workforce.percentage_bp(d.rules)
    d.record(est, "establishment.worker_left",
             {"worker_id": w.worker_id, "reason": reason, "contribution": c,
              "counted": counted, "percentage_bp": pct, **extra},
             establishment_id=est.file_number)


def active_employee(d: Decision, worker_id: str) -> Worker:
    """An employee of the requester, present, not under the requester's own report."""
    w = d.employee(worker_id)
    require(not w.imprisoned, "WORKER_IMPRISONED", f"worker {worker_id} is imprisoned")
    require(w.status != EXIT_REQUESTED, "WORKER_EXIT_PENDING",
            f"a final exit is pending for {worker_id}")
    require(w.absence is None or w.absence["filed_by"] != d.request.establishment_id,
            "WORKER_ABSENCE_OPEN", f"{d.request.establishment_id} reported {worker_id} absent")
    return w


def iqama_valid_or_exempt(d: Decision, est: Establishment, w: Worker) -> None:
    """Platinum and high green keep profession change and renewal regardless of iqama
    validity (DESIGN.md, Nitaqat privileges)."""
    if w.saudi or at_least(d.assessment(est).band, "high_green"):
        return
    require(w.days_left(w.iqama_expiry, d.today) >= 0, "WORKER_IQAMA_EXPIRED",
            f"the iqama of {w.worker_id} expired on {w.iqama_expiry}")


def join(d: Decision) -> None:
    p = d.payload
    est = d.establishment()
    kind = worker_id_kind(p.worker_id)
    require(kind != "national_id" or p.saudi_category == "saudi", "WORKER_DOCUMENTS",
            "a national id belongs to a Saudi (saudi_category 'saudi')")
    require(p.saudi_category is not None or p.arrival_date is not None, "WORKER_DOCUMENTS",
            "an expatriate joins with an arrival date")
    existing = d.uow.get(Worker, worker_stream(p.worker_id))
    if existing is not None and existing.status not in GONE:
        refuse("WORKER_EMPLOYED", f"worker {p.worker_id} is employed by {existing.employer}")
    if p.branch_id is not None:
        require(p.branch_id in est.branches, "BRANCH_UNKNOWN", f"no branch {p.branch_id}")
    facts = {"id_kind": kind, **p.model_dump(mode="json")}
    if existing is None:
        w = d.open(Worker, worker_stream(p.worker_id), "worker.joined", facts)
    else:
        w = existing
        d.record(w, "worker.joined", facts)
    count_in(d, est, w, "hire", visa_id=p.visa_id)


def profession_change(d: Decision) -> None:
    est = d.establishment()
    w = active_employee(d, d.payload.worker_id)
    iqama_valid_or_exempt(d, est, w)
    d.record(w, "worker.profession_changed",
             {"from_profession": w.profession, "to_profession": d.payload.profession})


def branch_transfer(d: Decision) -> None:
    est = d.establishment()
    w = active_employee(d, d.payload.worker_id)
    require(d.payload.branch_id in est.branches, "BRANCH_UNKNOWN",
            f"{est.file_number} has no branch {d.payload.branch_id}")
    d.record(w, "worker.branch_transferred",
             {"from_branch_id": w.branch_id, "to_branch_id": d.payload.branch_id})


def dependents_transfer(d: Decision) -> None:
    w = active_employee(d, d.payload.worker_id)
    d.record(w, "worker.dependents_transferred", {"dependents": d.payload.dependents})


def passports_sync(d: Decision) -> None:
    """The passports authority's daily feed, through the national information centre
    (seed 001: records refreshed every 24 hours)."""
    p = d.payload
    w = d.worker(p.worker_id)
    employer = w.employer
    if p.kind in ("exit_without_return", "final_exit_confirmed"):
        require(w.status not in GONE, "WORKER_LEFT_KINGDOM", f"{p.worker_id} already left")
        est = d.find_establishment(employer) if employer else None
        counted = not w.detached
        d.record(w, "worker.left_kingdom", {"kind": p.kind}, establishment_id=employer)
        if est is not None:
            count_out(d, est, w, p.kind, counted=counted)
    elif p.kind == "iqama_renewed":
        require(p.iqama_expiry is not None, "WORKER_DOCUMENTS", "iqama_expiry is required")
        d.record(w, "worker.iqama_renewed", {"iqama_expiry": str(p.iqama_expiry)},
                 establishment_id=employer)
    else:
        d.record(w, "worker.returned", {}, establishment_id=employer)


def imprisonment_flag(d: Decision) -> None:
    """The national information centre flags imprisoned workers (seed 001)."""
    w = d.worker(d.payload.worker_id)
    d.record(w, "worker.imprisonment_flagged", {"imprisoned": d.payload.imprisoned},
             establishment_id=w.employer)


def since(day: str, today: date) -> int:
    return (today - date.fromisoformat(day)).days
