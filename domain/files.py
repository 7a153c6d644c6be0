"""The establishment's file: opening it, its activity, its branches, its certificate."""

from __future__ import annotations

from datetime import timedelta

from domain.decision import Decision
from domain.establishment import Establishment
from domain.identifiers import establishment_stream
from domain.refusals import require


def open_file(d: Decision) -> None:
    number = d.request.establishment_id or ""
    p = d.payload
    require(d.find_establishment(number) is None, "ESTABLISHMENT_EXISTS",
            f"file {number} is already open")
    require(d.table.knows(p.activity), "ACTIVITY_UNKNOWN", f"no activity {p.activity!r}")
    est = d.open(Establishment, establishment_stream(number), "establishment.file_opened",
                 {**p.model_dump(mode="json"), "owner_account_id": d.request.actor.account_id})
    d.establishments[number] = est


def activity_change(d: Decision) -> None:
    est = d.establishment()
    activity = d.payload.activity
    require(d.table.knows(activity), "ACTIVITY_UNKNOWN", f"no activity {activity!r}")
    require(activity != est.activity, "ACTIVITY_UNCHANGED", f"already {activity}")
    d.record(est, "establishment.activity_changed",
             {"from_activity": est.activity, "to_activity": activity})


def branch_add(d: Decision) -> None:
    est = d.establishment()
    p = d.payload
    require(p.branch_id not in est.branches, "BRANCH_EXISTS", f"branch {p.branch_id} exists")
    d.record(est, "establishment.branch_added", {"branch_id": p.branch_id, "city": p.city})


def saudization_certificate(d: Decision) -> None:
    est = d.establishment()
    a = d.assessment(est)
    until = d.today + timedelta(days=d.rules.certificate_valid_days)
    d.record(est, "establishment.saudization_certificate_issued",
             {"band": a.band, "percentage_bp": a.percentage_bp, "average_bp": a.average_bp,
              "valid_until": until.isoformat()})
