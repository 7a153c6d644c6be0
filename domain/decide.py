"""Deciding one request: authorize, apply the establishment's sanctions, run the
service's rules, and record either its events or its refusal — then reassess the band
of every establishment the request touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from domain import (
    absence,
    delegation,
    eligibility,
    files,
    mobility,
    permits,
    reversals,
    visas,
    wages,
    workforce,
)
from domain.account import Unattributed
from domain.authorization import authorize
from domain.decision import Decision
from domain.identifiers import account_stream, refusal_stream
from domain.nitaqat import ThresholdTable
from domain.refusals import Refused
from domain.requests import WITHOUT_ESTABLISHMENT, RequestBase
from domain.rules import Rules
from domain.streams import Stream
from domain.unit_of_work import UnitOfWork

HANDLERS: Final[dict[str, Callable[[Decision], None]]] = {
    "establishment.open_file": files.open_file,
    "establishment.activity_change": files.activity_change,
    "establishment.branch_add": files.branch_add,
    "certificate.saudization": files.saudization_certificate,
    "portal.registration": delegation.register,
    "account.owner_registered": delegation.register,
    "account.delegate_registered": delegation.grant,
    "account.delegate_confirmed": delegation.confirm,
    "account.delegate_revoked": delegation.revoke,
    "account.agent_registered": delegation.appoint_agent,
    "account.login": delegation.login,
    "account.login_failed": delegation.login_failed,
    "account.password_changed": delegation.password_changed,
    "account.email_changed": delegation.email_changed,
    "worker.join": workforce.join,
    "worker.profession_change": workforce.profession_change,
    "worker.branch_transfer": workforce.branch_transfer,
    "dependents.transfer": workforce.dependents_transfer,
    "integration.passports_sync": workforce.passports_sync,
    "integration.imprisonment_flag": workforce.imprisonment_flag,
    "permit.issue": permits.issue,
    "permit.renew": permits.renew,
    "permit.temporary": permits.temporary,
    "permit.final_exit": permits.final_exit,
    "absence.report": absence.report,
    "absence.cancel": absence.cancel,
    "worker.service_transfer": mobility.transfer,
    "payroll.wage_protection_upload": wages.upload,
    "visa.issue": visas.issue,
    "visa.cancel": visas.cancel,
    "visa.compensatory_request": visas.compensatory,
    "recruitment.balance_request": visas.balance,
    "recruitment.disbursement_request": visas.disbursement,
    "audit.reversal": reversals.reverse,
}


@dataclass
class Outcome:
    request_id: str
    service: str
    accepted: bool
    rule: str | None = None
    message: str | None = None
    events: list[Stream.Event] = field(default_factory=list)


def decide(uow: UnitOfWork, request: RequestBase, rules: Rules,
           table: ThresholdTable) -> Outcome:
    d = Decision(uow, request, rules, table)
    outcome = Outcome(request.request_id, request.service, accepted=True)
    try:
        authorize(d)
        if _sanctions_apply(request):
            eligibility.check(d, d.establishment())
        HANDLERS[request.service](d)
    except Refused as refusal:
        if d.events:
            raise RuntimeError(f"{request.service} refused after recording events") from refusal
        outcome = Outcome(request.request_id, request.service, False, refusal.rule,
                          refusal.message)
        _record_refusal(d, refusal)
    else:
        _reassess_bands(d)
    outcome.events = d.events
    return outcome


def _sanctions_apply(request: RequestBase) -> bool:
    return (request.service not in WITHOUT_ESTABLISHMENT
            and request.service != "establishment.open_file")


def _record_refusal(d: Decision, refusal: Refused) -> None:
    """Into the stream of the establishment concerned; failing that the actor's account;
    failing that a stream of unattributed refusals for the claimed actor."""
    payload = {"rule": refusal.rule, "message": refusal.message,
               "service": d.request.service,
               "request_payload": d.payload.model_dump(mode="json")}
    number = _establishment_concerned(d)
    est = d.find_establishment(number) if number else None
    if est is not None:
        d.record(est, "request.rejected", payload, establishment_id=number)
        return
    actor = d.request.actor.account_id
    account = d.account(actor) if not actor.startswith(("sys:", "staff:")) else None
    if account is not None:
        d.record(account, "request.rejected", payload, establishment_id=number)
        return
    log = d.uow.get(Unattributed, refusal_stream(actor))
    if log is None:
        d.open(Unattributed, refusal_stream(actor), "request.rejected", payload,
               establishment_id=number)
    else:
        d.record(log, "request.rejected", payload, establishment_id=number)


def _establishment_concerned(d: Decision) -> str | None:
    if d.request.establishment_id:
        return d.request.establishment_id
    worker_id = getattr(d.payload, "worker_id", None)
    if worker_id:
        from domain.identifiers import worker_stream
        from domain.worker import Worker

        worker = d.uow.get(Worker, worker_stream(worker_id))
        if worker is not None:
            return worker.employer or worker.last_employer
    return None


def _reassess_bands(d: Decision) -> None:
    """Record a band change where the band now differs from the recorded one: after a
    workforce move, and also when time alone moved it (the 26-week average, the year's
    higher thresholds). Only after an accepted request: a refused one leaves nothing but
    its refusal, and the next accepted request records the change."""
    for est in d.establishments.values():
        if not est.activity:
            continue
        a = d.assessment(est)
        if a.band == est.band:
            continue
        cause = d.events[-1].event_id if d.events else None
        d.record(est, "establishment.band_changed",
                 {"from_band": est.band, "to_band": a.band, "percentage_bp": a.percentage_bp,
                  "average_bp": a.average_bp, "headcount": a.headcount, "size": a.size,
                  "cause_event_id": cause}, establishment_id=est.file_number)


__all__ = ["HANDLERS", "Outcome", "account_stream", "decide"]
