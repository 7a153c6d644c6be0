"""A tiny scenario DSL for rule tests: requests built with sensible defaults, submitted
one at a time to a real Ledger, so that a test reads like the rule it checks.

    s = Scenario(ledger).at("2025-01-01")
    s.open_file("1-100")                      # registers the owner, opens the file
    s.hire_expat("1-100", W1)
    s.at("2025-04-01")
    refused(s.issue_permit("1-100", W1), "PERMIT_ISSUE_WINDOW")

Every service method returns the Outcome. The acting account defaults to the
establishment's owner; pass `by=` (and `role=`, `credential=`, `channel=`) to act as
someone else. Accounts remember their current credential, so a password change made
through `change_password` is followed automatically unless `credential=` says otherwise.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from domain.decide import Outcome
from domain.establishment import Establishment
from domain.identifiers import establishment_stream, worker_stream
from domain.ledger import Ledger
from domain.nitaqat import Assessment, assess
from domain.requests import parse_request
from domain.worker import Worker

FIXED_NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def fixed_clock() -> datetime:
    return FIXED_NOW


def new_ledger(tmp_path: Path, **kwargs: Any) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path}/e.sqlite", clock=fixed_clock, **kwargs)


# -- assertions -------------------------------------------------------------------------
def accepted(outcome: Outcome) -> Outcome:
    assert outcome.accepted, f"{outcome.service} refused: {outcome.rule}: {outcome.message}"
    return outcome


def refused(outcome: Outcome, rule: str) -> Outcome:
    """Refused by `rule`, and nothing recorded for it but one `request.rejected` event
    carrying that rule."""
    assert not outcome.accepted, f"{outcome.service} was accepted; expected {rule}"
    assert outcome.rule == rule, f"{outcome.service} refused by {outcome.rule} " \
                                 f"({outcome.message}); expected {rule}"
    types = event_types(outcome)
    assert types == ["request.rejected"], f"a refusal recorded {types}"
    assert outcome.events[0].payload["rule"] == rule
    return outcome


def check(outcome: Outcome, rule: str | None) -> Outcome:
    """Accepted when `rule` is None, else refused by it."""
    return accepted(outcome) if rule is None else refused(outcome, rule)


def event_types(outcome: Outcome) -> list[str]:
    return [e.event_type for e in outcome.events]


def _default_role(account_id: str) -> str | None:
    if account_id.startswith("sys:"):
        return "system"
    if account_id.startswith("staff:aud"):
        return "auditor"
    if account_id.startswith("staff:"):
        return "office_clerk"
    return None


_CHANNEL = {"system": "integration", "office_clerk": "office", "auditor": "office"}


class Scenario:
    def __init__(self, ledger: Ledger, start: str | date = "2025-01-01") -> None:
        self.ledger = ledger
        self.today = date.fromisoformat(start) if isinstance(start, str) else start
        self.roles: dict[str, str] = {}
        self.credentials: dict[str, str] = {}
        self.owners: dict[str, str] = {}  # file number -> owner account
        self._requests = itertools.count(1)
        self._saudi_ids = itertools.count(1)
        self._expat_ids = itertools.count(1)

    # -- time ----------------------------------------------------------------------------
    def at(self, day: str | date) -> Scenario:
        self.today = date.fromisoformat(day) if isinstance(day, str) else day
        return self

    def after(self, days: int) -> Scenario:
        self.today += timedelta(days=days)
        return self

    # -- raw requests --------------------------------------------------------------------
    def request(self, service: str, payload: dict[str, Any] | None = None, *,
                file: str | None = None, by: str | None = None, role: str | None = None,
                credential: str | None = None, channel: str | None = None,
                on_behalf_of: str | None = None) -> dict[str, Any]:
        actor = by or (self.owners.get(file, "owner") if file else "owner")
        role = role or self.roles.get(actor) or _default_role(actor) or "owner"
        n = next(self._requests)
        moment = datetime.combine(self.today, datetime.min.time(), UTC) + timedelta(hours=9)
        return {
            "request_id": f"r{n}", "service": service,
            "occurred_at": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "channel": channel or _CHANNEL.get(role, "portal"),
            "actor": {"account_id": actor, "role": role, "on_behalf_of": on_behalf_of},
            "session_id": f"s-{actor}",
            "auth": {"method": "password",
                     "credential_id": credential or self.credentials.get(actor, f"c-{actor}")},
            "client": {"ip": "10.0.0.1", "device_id": f"d-{actor}"},
            "establishment_id": file, "payload": payload or {},
        }

    def submit(self, service: str, payload: dict[str, Any] | None = None,
               **context: Any) -> Outcome:
        return self.ledger.submit(parse_request(self.request(service, payload, **context)))

    # -- accounts ------------------------------------------------------------------------
    def register(self, account: str, role: str, **context: Any) -> Outcome:
        self.roles.setdefault(account, role)
        service = "account.owner_registered" if role == "owner" else "portal.registration"
        return self.submit(service, {"email": f"{account}@example.sa"}, by=account,
                           role=role, **context)

    def owner(self, account: str = "owner") -> Outcome:
        return self.register(account, "owner")

    def delegate(self, account: str = "delegate") -> Outcome:
        return self.register(account, "delegate")

    def agent(self, account: str = "agent") -> Outcome:
        return self.register(account, "agent")

    def grant(self, file: str, delegate: str, services: list[str], *,
              valid_from: str | None = None, valid_until: str | None = None,
              **context: Any) -> Outcome:
        return self.submit("account.delegate_registered",
                           {"delegate_account_id": delegate, "services": services,
                            "valid_from": valid_from, "valid_until": valid_until},
                           file=file, **context)

    def confirm(self, file: str, delegate: str, **context: Any) -> Outcome:
        return self.submit("account.delegate_confirmed", file=file, by=delegate, **context)

    def revoke(self, file: str, delegate: str, **context: Any) -> Outcome:
        return self.submit("account.delegate_revoked", {"delegate_account_id": delegate},
                           file=file, **context)

    def appoint_agent(self, agent: str, *, by: str = "owner", **context: Any) -> Outcome:
        return self.submit("account.agent_registered", {"agent_account_id": agent}, by=by,
                           **context)

    def login(self, account: str, **context: Any) -> Outcome:
        return self.submit("account.login", by=account, **context)

    def change_password(self, account: str, new_credential: str, **context: Any) -> Outcome:
        outcome = self.submit("account.password_changed",
                              {"new_credential_id": new_credential}, by=account, **context)
        if outcome.accepted:
            self.credentials[account] = new_credential
        return outcome

    # -- the establishment's file --------------------------------------------------------
    def open_file(self, file: str = "1-100", *, owner: str = "owner",
                  activity: str = "construction", owner_counts_as_saudi: bool = True,
                  register: bool = True, **context: Any) -> Outcome:
        """Opens the file, registering the owner first if it is new to the scenario
        (unless `register` is False)."""
        if register and owner not in self.roles:
            accepted(self.owner(owner))
        self.owners.setdefault(file, owner)
        return self.submit("establishment.open_file",
                           {"name": f"Establishment {file}", "commercial_registration":
                            "1010101010", "activity": activity, "city": "Riyadh",
                            "owner_counts_as_saudi": owner_counts_as_saudi},
                           file=file, by=context.pop("by", owner), **context)

    def change_activity(self, file: str, activity: str, **context: Any) -> Outcome:
        return self.submit("establishment.activity_change", {"activity": activity},
                           file=file, **context)

    def add_branch(self, file: str, branch: str = "b1", **context: Any) -> Outcome:
        return self.submit("establishment.branch_add", {"branch_id": branch, "city": "Jeddah"},
                           file=file, **context)

    def certificate(self, file: str, **context: Any) -> Outcome:
        return self.submit("certificate.saudization", file=file, **context)

    # -- workers -------------------------------------------------------------------------
    def saudi_id(self) -> str:
        return f"1{next(self._saudi_ids):09d}"

    def expat_id(self) -> str:
        return f"2{next(self._expat_ids):09d}"

    def hire_saudi(self, file: str, worker: str | None = None, *, wage: int = 4000,
                   **facts: Any) -> Outcome:
        context = {k: facts.pop(k) for k in ("by", "role", "credential", "channel")
                   if k in facts}
        return self.submit("worker.join", {
            "worker_id": worker or self.saudi_id(), "nationality": "SAU",
            "saudi_category": "saudi", "profession": "accountant", "wage_sar": wage,
            **facts}, file=file, **context)

    def hire_expat(self, file: str, worker: str | None = None, *,
                   arrival: str | date | None = None, iqama_days: int = 730,
                   **facts: Any) -> Outcome:
        """An expatriate who arrived `arrival` (default today), iqama `iqama_days` long."""
        context = {k: facts.pop(k) for k in ("by", "role", "credential", "channel")
                   if k in facts}
        arrived = (date.fromisoformat(arrival) if isinstance(arrival, str)
                   else arrival or self.today)
        payload = {"worker_id": worker or self.expat_id(), "nationality": "IND",
                   "profession": "mason", "wage_sar": 1500,
                   "arrival_date": arrived.isoformat(),
                   "iqama_expiry": (arrived + timedelta(days=iqama_days)).isoformat(),
                   **facts}
        return self.submit("worker.join", {k: v for k, v in payload.items() if v is not None},
                           file=file, **context)

    def staff(self, file: str, *, saudis: int = 0, expats: int = 0) -> None:
        """Hire that many Saudis (full weight) and expatriates, all accepted."""
        for _ in range(saudis):
            accepted(self.hire_saudi(file))
        for _ in range(expats):
            accepted(self.hire_expat(file))

    def change_profession(self, file: str, worker: str, profession: str = "foreman",
                          **context: Any) -> Outcome:
        return self.submit("worker.profession_change",
                           {"worker_id": worker, "profession": profession},
                           file=file, **context)

    def branch_transfer(self, file: str, worker: str, branch: str, **context: Any) -> Outcome:
        return self.submit("worker.branch_transfer", {"worker_id": worker, "branch_id": branch},
                           file=file, **context)

    def dependents(self, file: str, worker: str, count: int = 1, **context: Any) -> Outcome:
        return self.submit("dependents.transfer", {"worker_id": worker, "dependents": count},
                           file=file, **context)

    # -- permits -------------------------------------------------------------------------
    def issue_permit(self, file: str, worker: str, months: int = 12,
                     **context: Any) -> Outcome:
        return self.submit("permit.issue", {"worker_id": worker, "months": months},
                           file=file, **context)

    def renew_permit(self, file: str, worker: str, months: int = 12,
                     **context: Any) -> Outcome:
        return self.submit("permit.renew", {"worker_id": worker, "months": months},
                           file=file, **context)

    def temporary_permit(self, file: str, worker: str, months: int = 3,
                         **context: Any) -> Outcome:
        return self.submit("permit.temporary", {"worker_id": worker, "months": months},
                           file=file, **context)

    def final_exit(self, file: str, worker: str, **context: Any) -> Outcome:
        return self.submit("permit.final_exit", {"worker_id": worker}, file=file, **context)

    # -- absence reports -----------------------------------------------------------------
    def report_absence(self, file: str, worker: str, **context: Any) -> Outcome:
        return self.submit("absence.report", {"worker_id": worker}, file=file, **context)

    def cancel_absence(self, file: str, worker: str, **context: Any) -> Outcome:
        return self.submit("absence.cancel", {"worker_id": worker}, file=file, **context)

    # -- mobility ------------------------------------------------------------------------
    def transfer(self, file: str, worker: str, to: str, *, consent: bool = True,
                 notice_given_on: str | None = None, **context: Any) -> Outcome:
        """Requested by `file`: the receiver, or the current employer releasing."""
        return self.submit("worker.service_transfer",
                           {"worker_id": worker, "to_establishment_id": to,
                            "worker_consent": consent, "notice_given_on": notice_given_on},
                           file=file, **context)

    # -- wages ---------------------------------------------------------------------------
    def upload_wages(self, file: str, month: str, *, total: int = 10, paid: int | None = None,
                     **context: Any) -> Outcome:
        return self.submit("payroll.wage_protection_upload",
                           {"month": month, "workers_total": total,
                            "workers_paid_as_recorded": total if paid is None else paid},
                           file=file, **context)

    def pay_wages(self, file: str, *, months: int = 3, total: int = 10,
                  paid: int | None = None) -> None:
        """File the last `months` months before this one that are not yet filed."""
        filed = self.establishment(file).wage_files
        first = self.today.replace(day=1)
        for back in range(months, 0, -1):
            y, m = divmod(first.year * 12 + first.month - 1 - back, 12)
            month = f"{y:04d}-{m + 1:02d}"
            if month not in filed:
                accepted(self.upload_wages(file, month, total=total, paid=paid))

    # -- visas and recruitment -----------------------------------------------------------
    def issue_visa(self, file: str, visa: str = "v1", **context: Any) -> Outcome:
        return self.submit("visa.issue",
                           {"visa_id": visa, "nationality": "IND", "profession": "mason"},
                           file=file, **context)

    def cancel_visa(self, file: str, visa: str = "v1", **context: Any) -> Outcome:
        return self.submit("visa.cancel", {"visa_id": visa}, file=file, **context)

    def compensatory_visa(self, file: str, for_worker: str, **context: Any) -> Outcome:
        return self.submit("visa.compensatory_request", {"for_worker_id": for_worker},
                           file=file, **context)

    def recruitment(self, file: str, kind: str = "balance", count: int = 1,
                    **context: Any) -> Outcome:
        return self.submit(f"recruitment.{kind}_request", {"count": count}, file=file,
                           **context)

    # -- integrations and staff ----------------------------------------------------------
    def passports(self, worker: str, kind: str = "final_exit_confirmed", *,
                  iqama_expiry: str | None = None, by: str = "sys:passports",
                  **context: Any) -> Outcome:
        payload: dict[str, Any] = {"worker_id": worker, "kind": kind}
        if iqama_expiry:
            payload["iqama_expiry"] = iqama_expiry
        return self.submit("integration.passports_sync", payload, by=by, **context)

    def imprison(self, worker: str, imprisoned: bool = True, *, by: str = "sys:nic",
                 **context: Any) -> Outcome:
        return self.submit("integration.imprisonment_flag",
                           {"worker_id": worker, "imprisoned": imprisoned}, by=by, **context)

    def reverse(self, event_id: str, *, worker: str | None = None,
                delegate: str | None = None, by: str = "staff:auditor",
                **context: Any) -> Outcome:
        payload: dict[str, Any] = {"reverses_event_id": event_id, "reason": "fraud"}
        if worker:
            payload["worker_id"] = worker
        if delegate:
            payload["delegate_account_id"] = delegate
        return self.submit("audit.reversal", payload, by=by, **context)

    # -- reading state -------------------------------------------------------------------
    def establishment(self, file: str) -> Establishment:
        est = self.ledger.load(establishment_stream(file))
        assert isinstance(est, Establishment), f"no establishment {file}"
        return est

    def worker(self, worker: str) -> Worker:
        w = self.ledger.load(worker_stream(worker))
        assert isinstance(w, Worker), f"no worker {worker}"
        return w

    def assessment(self, file: str) -> Assessment:
        est = self.establishment(file)
        return assess(workforce=est.workforce, samples=est.samples, activity=est.activity,
                      day=self.today, owner_counts_as_saudi=est.owner_counts_as_saudi,
                      table=self.ledger.table, rules=self.ledger.rules)

    def band(self, file: str) -> str:
        return self.assessment(file).band

    def recorded(self) -> int:
        """How many events the store holds."""
        return self.ledger.recorder.max_notification_id() or 0


__all__ = ["FIXED_NOW", "Scenario", "accepted", "check", "event_types", "fixed_clock",
           "new_ledger", "refused"]
