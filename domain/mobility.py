"""Service transfer (نقل خدمة): job mobility under the labour reform (resolution
51848/1442, in force 14 March 2021).

The receiving establishment must be medium green or better and 80% compliant with wage
protection over three months. Without the employer's consent the worker may move at
contract end, or during the contract after 12 months and a notice period; a worker
under an absence report, or whose wages are over three months late, moves freely.
One request moves the worker and changes both establishments, saved together.
"""

from __future__ import annotations

from datetime import date

from domain.decision import Decision
from domain.eligibility import compliance_bp, months_late, wages_free_transfer
from domain.establishment import Establishment
from domain.nitaqat import at_least
from domain.refusals import refuse, require
from domain.worker import EXIT_REQUESTED, GONE, Worker
from domain.workforce import count_in, count_out, since


def _receiver_ready(d: Decision, receiver: Establishment) -> None:
    band = d.assessment(receiver).band
    require(at_least(band, "medium_green"), "NITAQAT_BAND_TOO_LOW",
            f"receiver {receiver.file_number} is {band}; medium green is needed")
    months = d.rules.transfer_compliance_months
    bp = compliance_bp(receiver, d.today, months)
    require(bp >= d.rules.transfer_min_compliance_bp, "TRANSFER_RECEIVER_COMPLIANCE",
            f"receiver {receiver.file_number} is {bp / 100:.0f}% compliant over {months} "
            "months")


def _movable(d: Decision, w: Worker, receiver: Establishment) -> None:
    require(w.status not in GONE and w.employer is not None, "WORKER_LEFT_KINGDOM",
            f"{w.worker_id} has left the kingdom")
    require(w.employer != receiver.file_number, "TRANSFER_SAME_EMPLOYER",
            f"{w.worker_id} already works for {receiver.file_number}")
    require(d.payload.worker_consent, "TRANSFER_WORKER_CONSENT",
            f"{w.worker_id} has not consented")
    require(not w.imprisoned, "WORKER_IMPRISONED", f"{w.worker_id} is imprisoned")
    require(w.status != EXIT_REQUESTED, "WORKER_EXIT_PENDING",
            f"a final exit is pending for {w.worker_id}")
    status = w.absence_status(d.today, d.rules.absence_discontinued_days)
    require(status != "absent", "TRANSFER_WORKER_ABSENT",
            f"{w.worker_id} is absent; the transfer window has passed")


def _basis(d: Decision, w: Worker, employer: Establishment) -> str:
    """Why the worker may leave the employer now: the first ground that applies."""
    if d.request.establishment_id == employer.file_number:
        return "employer_release"
    if w.absence_status(d.today, d.rules.absence_discontinued_days) == "discontinued":
        return "absence_report"
    if wages_free_transfer(employer, d.today, d.rules):
        return "wage_arrears"
    if w.contract_end and date.fromisoformat(w.contract_end) <= d.today:
        return "contract_end"
    served = since(w.employed_since, d.today)
    require(served >= d.rules.transfer_first_employer_days, "TRANSFER_FIRST_YEAR",
            f"{w.worker_id} has served {served} days")
    notice = d.payload.notice_given_on
    require(notice is not None and (d.today - notice).days >= d.rules.transfer_notice_days,
            "TRANSFER_NOTICE", f"notice of {d.rules.transfer_notice_days} days is needed")
    return "notice_served"


def transfer(d: Decision) -> None:
    requester = d.establishment()
    receiver = d.establishment(d.payload.to_establishment_id)
    w = d.worker(d.payload.worker_id)
    if requester.file_number not in (receiver.file_number, w.employer):
        refuse("WORKER_NOT_EMPLOYEE", f"{requester.file_number} is neither the receiver "
                                      f"nor {w.worker_id}'s employer")
    _movable(d, w, receiver)
    employer = d.establishment(w.employer)
    # While its report is open the filer cannot transfer the worker (DESIGN.md).
    require(requester is not employer or w.absence is None, "WORKER_ABSENCE_OPEN",
            f"{employer.file_number} reported {w.worker_id} absent")
    _receiver_ready(d, receiver)
    basis = _basis(d, w, employer)
    counted = not w.detached
    moved = {"from_establishment_id": employer.file_number,
             "to_establishment_id": receiver.file_number, "basis": basis,
             "employer_months_late": months_late(employer, d.today)}
    d.record(w, "worker.service_transferred", moved, establishment_id=receiver.file_number)
    count_out(d, employer, w, "service_transfer", counted=counted,
              to_establishment_id=receiver.file_number)
    count_in(d, receiver, w, "service_transfer", from_establishment_id=employer.file_number)
