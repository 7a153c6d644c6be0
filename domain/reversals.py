"""Auditor-ordered reversals: compensating events that undo a fraudulent step.

Invariant 1 of DESIGN.md: nothing recorded is changed. A reversal is a new event that
names the event it undoes and the auditor who ordered it; it undoes only what the rules
can still undo (an open absence report, the latest service transfer while the worker is
still with the receiver, a pending final exit, a delegate's grant).
"""

from __future__ import annotations

from typing import Any

from domain.decision import Decision
from domain.refusals import refuse
from domain.worker import EXIT_REQUESTED, Worker
from domain.workforce import count_in, count_out


def _note(d: Decision) -> dict[str, Any]:
    return {"reverses_event_id": d.payload.reverses_event_id,
            "ordered_by": d.request.actor.account_id, "reason": d.payload.reason}


def _undo_absence(d: Decision, w: Worker) -> None:
    assert w.absence is not None
    filer = d.establishment(w.absence["filed_by"])
    d.record(w, "worker.absence_cancelled",
             {"report_event_id": w.absence["event_id"], "reversal": _note(d)},
             establishment_id=filer.file_number)
    count_in(d, filer, w, "absence_reversed", reversal=_note(d))


def _undo_transfer(d: Decision, w: Worker) -> None:
    assert w.last_transfer is not None
    receiver = d.establishment(w.last_transfer["to"])
    origin = d.establishment(w.last_transfer["from"])
    d.record(w, "worker.service_transferred",
             {"from_establishment_id": receiver.file_number,
              "to_establishment_id": origin.file_number, "basis": "reversal",
              "employer_months_late": 0, "reversal": _note(d)},
             establishment_id=origin.file_number)
    count_out(d, receiver, w, "reversal", counted=True, to_establishment_id=origin.file_number)
    count_in(d, origin, w, "reversal", from_establishment_id=receiver.file_number)


def _undo_worker_step(d: Decision, w: Worker) -> None:
    target = d.payload.reverses_event_id
    if w.absence is not None and w.absence["event_id"] == target:
        _undo_absence(d, w)
    elif (w.last_transfer is not None and w.last_transfer["event_id"] == target
          and w.employer == w.last_transfer["to"]):
        _undo_transfer(d, w)
    elif w.status == EXIT_REQUESTED and w.exit_event_id == target:
        d.record(w, "worker.final_exit_withdrawn", {"reversal": _note(d)},
                 establishment_id=w.employer)
    else:
        refuse("REVERSAL_NOT_APPLICABLE",
               f"{target} is not an open report, the latest transfer or a pending exit "
               f"of {w.worker_id}")


def _undo_grant(d: Decision, account_id: str) -> None:
    account = d.account(account_id)
    target = d.payload.reverses_event_id
    grants = account.grants.items() if account else ()
    matching = [n for n, g in grants if g["event_id"] == target and not g["revoked"]]
    if account is None or not matching:
        refuse("REVERSAL_NOT_APPLICABLE", f"{target} is not a live grant of {account_id}")
    d.record(account, "account.delegation_revoked",
             {"establishment_id": matching[0], "reversal": _note(d)},
             establishment_id=matching[0])


def reverse(d: Decision) -> None:
    if d.payload.worker_id is not None:
        _undo_worker_step(d, d.worker(d.payload.worker_id))
    elif d.payload.delegate_account_id is not None:
        _undo_grant(d, d.payload.delegate_account_id)
    else:
        refuse("REVERSAL_NOT_APPLICABLE", "name a worker_id or a delegate_account_id")
