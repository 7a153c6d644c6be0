"""Hypothesis strategies: request histories over a small world, so that rules collide.

A few owners, establishments, workers and a delegate, and every service drawn at random
with plausible or implausible arguments: many requests are refused, which is the point.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

OWNERS = ("1000000011", "1000000012")
ESTABLISHMENTS = {"1-1": OWNERS[0], "1-2": OWNERS[1]}
SAUDIS = ("1000000101", "1000000102")
EXPATS = ("2000000101", "2000000102", "2000000103")
DELEGATE = "1000000201"
START = datetime(2025, 1, 5, 6, 0, tzinfo=UTC)


def request(n: int, at: datetime, service: str, payload: dict[str, Any], *,
            est: str | None = None, actor: str = OWNERS[0], role: str = "owner",
            cred: str | None = None, channel: str = "portal") -> dict[str, Any]:
    return {
        "request_id": f"h{n}", "service": service,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "channel": channel,
        "actor": {"account_id": actor, "role": role,
                  "on_behalf_of": None if role == "owner" else ESTABLISHMENTS.get(est or "")},
        "session_id": f"s{n // 5}", "auth": {"method": "password",
                                             "credential_id": cred or f"c-{actor}"},
        "client": {"ip": "10.1.2.3", "device_id": f"d-{actor}", "user_agent": "test"},
        "establishment_id": est, "payload": payload,
    }


def bootstrap() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Owners registered, files opened, a Saudi and an expatriate hired in each."""
    steps: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for owner in OWNERS:
        steps.append(("account.owner_registered", {"email": f"{owner}@x.sa"}, {"actor": owner}))
    steps.append(("portal.registration", {"email": "d@x.sa"},
                  {"actor": DELEGATE, "role": "delegate"}))
    for number, owner in ESTABLISHMENTS.items():
        steps.append(("establishment.open_file",
                      {"name": f"Est {number}", "commercial_registration": "1010101010",
                       "activity": "retail_trade", "city": "Riyadh"},
                      {"est": number, "actor": owner}))
    for i, (number, owner) in enumerate(ESTABLISHMENTS.items()):
        steps.append(("worker.join", _saudi(SAUDIS[i]), {"est": number, "actor": owner}))
        steps.append(("worker.join", _expat(EXPATS[i], START.date()),
                      {"est": number, "actor": owner}))
        steps.append(("permit.issue", {"worker_id": EXPATS[i], "months": 12},
                      {"est": number, "actor": owner}))
    return steps


def _saudi(worker_id: str, wage: int = 5000) -> dict[str, Any]:
    return {"worker_id": worker_id, "nationality": "SAU", "saudi_category": "saudi",
            "profession": "clerk", "wage_sar": wage}


def _expat(worker_id: str, arrived: date) -> dict[str, Any]:
    return {"worker_id": worker_id, "nationality": "IND", "profession": "mason",
            "wage_sar": 1500, "arrival_date": arrived.isoformat(),
            "iqama_expiry": (arrived + timedelta(days=400)).isoformat()}


workers = st.sampled_from(SAUDIS + EXPATS)
months = st.sampled_from([3, 5, 6, 12])


def _service_step(draw: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    est = draw(st.sampled_from(sorted(ESTABLISHMENTS)))
    owner = ESTABLISHMENTS[est]
    who: dict[str, Any] = {"est": est, "actor": owner}
    if draw(st.integers(0, 9)) == 0:
        who = {"est": est, "actor": DELEGATE, "role": "delegate"}
    service = draw(st.sampled_from(SERVICES))
    payload: dict[str, Any]
    if service in ("permit.issue", "permit.renew", "permit.temporary"):
        payload = {"worker_id": draw(workers), "months": draw(months)}
    elif service in ("permit.final_exit", "absence.cancel") or service == "absence.report":
        payload = {"worker_id": draw(workers)}
    elif service == "worker.join":
        payload = _expat(draw(st.sampled_from(EXPATS)), START.date())
    elif service == "worker.service_transfer":
        payload = {"worker_id": draw(workers), "worker_consent": draw(st.booleans()),
                   "to_establishment_id": draw(st.sampled_from(sorted(ESTABLISHMENTS)))}
    elif service == "payroll.wage_protection_upload":
        payload = {"month": draw(st.sampled_from(["last", "this", "2025-01"])),
                   "workers_total": 2, "workers_paid_as_recorded": draw(st.integers(0, 2))}
    elif service == "account.delegate_registered":
        payload = {"delegate_account_id": DELEGATE,
                   "services": draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=3))}
    elif service == "account.delegate_confirmed":
        who = {"est": est, "actor": DELEGATE, "role": "delegate"}
        payload = {}
    elif service == "account.delegate_revoked":
        payload = {"delegate_account_id": DELEGATE}
    elif service == "worker.profession_change":
        payload = {"worker_id": draw(workers), "profession": "driver"}
    elif service == "integration.passports_sync":
        who = {"actor": "sys:passports", "role": "system", "channel": "integration"}
        payload = {"worker_id": draw(workers),
                   "kind": draw(st.sampled_from(["exit_without_return", "returned"]))}
    elif service == "establishment.branch_add":
        payload = {"branch_id": draw(st.sampled_from(["b1", "b2"])), "city": "Jeddah"}
    else:  # certificate.saudization
        payload = {}
    return service, payload, who


SERVICES = ["payroll.wage_protection_upload", "payroll.wage_protection_upload",
            "permit.issue", "permit.renew", "permit.temporary", "permit.final_exit",
            "absence.report", "absence.cancel", "worker.join", "worker.service_transfer",
            "payroll.wage_protection_upload", "account.delegate_registered",
            "account.delegate_confirmed", "account.delegate_revoked",
            "worker.profession_change", "integration.passports_sync",
            "establishment.branch_add", "certificate.saudization"]


@st.composite
def histories(draw: Any, max_steps: int = 25) -> list[dict[str, Any]]:
    """A bootstrap then random requests, each a few hours to days after the last."""
    steps = bootstrap() + [_service_step(draw) for _ in range(draw(st.integers(0, max_steps)))]
    at, out = START, []
    for n, (service, payload, who) in enumerate(steps):
        at += timedelta(hours=draw(st.integers(1, 24 * 6)))
        who = dict(who)
        if payload.get("month") in ("last", "this"):
            day = at.date() - timedelta(days=28 if payload["month"] == "last" else 0)
            payload = {**payload, "month": day.strftime("%Y-%m")}
        out.append(request(n, at, service, payload, est=who.pop("est", None),
                           actor=who.pop("actor"), role=who.pop("role", "owner"),
                           channel=who.pop("channel", "portal")))
    return out
