"""Remediation: the compensating requests that bring the actual state to the
counterfactual where the rules allow — each an `audit.reversal` that names the event it
undoes and the auditor who ordered it, recorded like any request (invariant 1: nothing
is edited; a correction is a new event).

What can be undone is what is still in place: an open absence report, the worker's
latest transfer while they are still with the receiver, a pending final exit, a
delegate's live grant. The rest is reported with the reason it cannot be reversed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.account import Account
from domain.context import iso
from domain.decide import Outcome
from domain.identifiers import account_stream
from domain.ledger import Ledger
from domain.requests import parse_request
from domain.worker import EXIT_REQUESTED, GONE, Worker

Record = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One effect of an excluded request, and what to do about it."""

    event_id: str
    event_type: str
    establishment_id: str | None
    subject: str
    action: str  # the reversal to request, or why there is none
    request: dict[str, Any] | None  # the audit.reversal request, when there is one


def _reversal(auditor: str, target: Record, reason: str, **subject: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"request_id": f"remediate-{target['event_id']}", "service": "audit.reversal",
            "occurred_at": iso(now), "channel": "office",
            "actor": {"account_id": auditor, "role": "auditor", "on_behalf_of": None},
            "session_id": f"remediation-{now:%Y%m%dT%H%M%S}",
            "auth": {"method": "certificate", "credential_id": f"{auditor}-certificate"},
            "client": {"ip": "127.0.0.1", "device_id": "sijil-cli", "user_agent": "sijil"},
            "establishment_id": None,
            "payload": {"reverses_event_id": target["event_id"], "reason": reason, **subject}}


def _worker_step(ledger: Ledger, r: Record, auditor: str, reason: str) -> Step:
    w = ledger.load(_uuid(r["stream"]))
    assert isinstance(w, Worker)
    kind, event_id = r["event_type"], r["event_id"]
    live = {
        "worker.absence_reported": bool(w.absence and w.absence["event_id"] == event_id),
        "worker.service_transferred": bool(
            w.last_transfer and w.last_transfer["event_id"] == event_id
            and w.employer == w.last_transfer["to"]),
        "worker.final_exit_requested": w.status == EXIT_REQUESTED
        and w.exit_event_id == event_id,
    }[kind]
    subject = f"worker {w.worker_id}"
    if not live:
        return Step(event_id, kind, r["establishment_id"], subject, _why_not(w), None)
    request = _reversal(auditor, r, reason, worker_id=w.worker_id)
    return Step(event_id, kind, r["establishment_id"], subject, f"reverse {kind}", request)


def _why_not(w: Worker) -> str:
    """Why an effect is no longer there to undo, in the analyst's words."""
    if w.status in GONE:
        return "the worker has left the kingdom (confirmed by passports): not reversible"
    if w.last_transfer is not None:
        t = w.last_transfer
        return (f"overtaken: the worker was since transferred {t['from']} -> {t['to']} "
                f"(event {t['event_id']}); reverse that transfer if it was fraudulent too")
    return "already undone by a later step: nothing to reverse"


def _grant_step(ledger: Ledger, r: Record, auditor: str, reason: str) -> Step:
    account = ledger.load(_uuid(r["stream"]))
    assert isinstance(account, Account)
    grant = account.grants.get(r["payload"]["establishment_id"])
    subject = f"delegate {account.account_id}"
    if not grant or grant["event_id"] != r["event_id"] or grant["revoked"]:
        return Step(r["event_id"], r["event_type"], r["establishment_id"], subject,
                    "grant already revoked or replaced", None)
    request = _reversal(auditor, r, reason, delegate_account_id=account.account_id)
    return Step(r["event_id"], r["event_type"], r["establishment_id"], subject,
                "revoke the delegation", request)


UNDOABLE = {"worker.absence_reported", "worker.service_transferred",
            "worker.final_exit_requested"}
NOT_BY_AUDITOR = {
    "account.password_changed": "the owner resets the password through national SSO",
    "account.email_changed": "the owner restores the e-mail after resetting the password",
    "account.agent_appointed": "the owner revokes the agent (no reversal rule yet)",
}


def plan(ledger: Ledger, excluded_positions: list[int], auditor: str,
         reason: str) -> list[Step]:
    notes = ledger.recorder.select_notifications_by_ids(excluded_positions)  # type: ignore[attr-defined]
    steps: list[Step] = []
    for r in (ledger.record_of(n) for n in notes):
        if r["event_type"] in UNDOABLE and r["payload"].get("basis") != "reversal":
            steps.append(_worker_step(ledger, r, auditor, reason))
        elif r["event_type"] == "account.delegation_granted":
            steps.append(_grant_step(ledger, r, auditor, reason))
        elif r["event_type"] in NOT_BY_AUDITOR:
            steps.append(Step(r["event_id"], r["event_type"], r["establishment_id"],
                              f"account {r['request']['actor']['account_id']}",
                              NOT_BY_AUDITOR[r["event_type"]], None))
    return steps


def apply(ledger: Ledger, steps: list[Step]) -> list[tuple[Step, Outcome]]:
    """Submit each reversal as a request of its own: recorded, accepted or refused."""
    done = []
    for step in steps:
        if step.request is not None:
            done.append((step, ledger.submit(parse_request(step.request))))
    return done


def _uuid(text: str) -> Any:
    from uuid import UUID

    return UUID(text)


__all__ = ["Step", "account_stream", "apply", "plan"]
