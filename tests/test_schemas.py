"""The event contract: the committed JSON Schemas are the generated ones, every event
type the handlers record has a model, and every record a real scenario produces
validates against its model and its schema file.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import pkgutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import domain
from domain.decide import Outcome
from domain.envelope import contract_record
from domain.events import EVENT_TYPES, InvalidRecord, validate_record
from domain.ledger import Ledger
from domain.requests import parse_request
from domain.schemas import DRAFT, generate, problems

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = Path(domain.__file__).resolve().parent
# Modules of the contract itself, not handlers.
NOT_HANDLERS = {"events", "schemas"}

try:
    import jsonschema
except ImportError:  # not a project dependency: pydantic alone checks then
    jsonschema = None


# -- (a) the committed schemas are the generated ones ------------------------------
def test_committed_schemas_are_generated() -> None:
    found = problems(ROOT)
    assert not found, ("schemas/ differs from the models in domain/events.py and "
                       "domain/requests.py; run `python -m domain.schemas`:\n  "
                       + "\n  ".join(found))


def test_every_schema_is_a_titled_2020_12_document() -> None:
    docs = generate()
    ids = [doc["$id"] for doc in docs.values()]
    assert len(ids) == len(set(ids)), "every $id is unique"
    for path, doc in docs.items():
        assert doc["$schema"] == DRAFT, path
        assert doc["$id"].startswith("urn:sijil:"), path
        assert doc["title"] and doc["description"], path
    for t in EVENT_TYPES.values():
        doc = docs[f"schemas/events/{t.name}.v{t.schema_version}.json"]
        assert doc["$id"] == f"urn:sijil:events:{t.name}:v{t.schema_version}"
        assert doc["properties"]["event_type"]["const"] == t.name


# -- (c) every event type the handlers record has a model ---------------------------
def _recorded_event_types() -> dict[str, set[str]]:
    """Event-type literals passed to `.record(aggregate, event_type, ...)` and
    `.open(kind, stream_id, event_type, ...)` anywhere in domain/, by module."""
    found: dict[str, set[str]] = {}
    for info in pkgutil.iter_modules([str(DOMAIN)]):
        if info.name in NOT_HANDLERS:
            continue
        tree = ast.parse((DOMAIN / f"{info.name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            index = {"record": 1, "open": 2}.get(node.func.attr)
            if index is None:
                continue
            candidates = [node.args[index]] if len(node.args) > index else []
            candidates += [k.value for k in node.keywords if k.arg == "event_type"]
            for arg in candidates:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, set()).add(info.name)
    return found


def test_every_recorded_event_type_has_a_model() -> None:
    recorded = _recorded_event_types()
    assert len(recorded) > 30, "the scan found the handlers' event types"
    unmodelled = {t: sorted(m) for t, m in recorded.items() if t not in EVENT_TYPES}
    assert not unmodelled, (f"event types without a payload model in domain/events.py "
                            f"(add one, then run `python -m domain.schemas`): {unmodelled}")
    unrecorded = sorted(set(EVENT_TYPES) - set(recorded))
    assert not unrecorded, f"models for event types no handler records: {unrecorded}"


# -- (b) a scenario's records validate ---------------------------------------------
E1, E2 = "1-1001", "1-1002"
OWNER, DELEGATE, AGENT = "owner-1", "delegate-1", "agent-1"
AUDITOR, PASSPORTS, NIC = "staff:auditor-1", "sys:passports", "sys:nic"
SAUDI, EXPAT1, EXPAT2 = "1000000001", "2000000001", "2000000002"
ROLES = {OWNER: "owner", DELEGATE: "delegate", AGENT: "agent", AUDITOR: "auditor",
         PASSPORTS: "system", NIC: "system", "ghost-1": "owner"}


class Scenario:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.ids = itertools.count(1)
        self.at = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
        self.credentials = {account: f"cred-{account}" for account in ROLES}

    def submit(self, service: str, actor: str, payload: dict[str, Any] | None = None,
               est: str | None = None, *, accepted: bool = True, days: int = 0) -> Outcome:
        self.at += timedelta(days=days, minutes=5)
        channel = ("integration" if actor.startswith("sys:")
                   else "office" if actor.startswith("staff:") else "portal")
        request = parse_request({
            "request_id": f"r-{next(self.ids)}", "service": service,
            "occurred_at": self.at.isoformat(), "channel": channel,
            "actor": {"account_id": actor, "role": ROLES[actor]},
            "session_id": f"s-{actor}", "establishment_id": est,
            "auth": {"method": "password_otp", "credential_id": self.credentials[actor]},
            "client": {"ip": "10.0.0.7", "device_id": "dev-1", "user_agent": "test"},
            "payload": payload or {},
        })
        outcome = self.ledger.submit(request)
        assert outcome.accepted == accepted, (service, outcome.rule, outcome.message)
        return outcome

    def event_id(self, outcome: Outcome, event_type: str) -> str:
        return next(e.event_id for e in outcome.events if e.event_type == event_type)

    def run(self) -> None:
        s = self.submit
        for account in (OWNER, DELEGATE, AGENT):
            s("portal.registration", account, {"email": f"{account}@example.sa"})
        for number in (E1, E2):
            s("establishment.open_file", OWNER,
              {"name": f"Est {number}", "commercial_registration": "1010101010",
               "activity": "retail_trade", "city": "Riyadh", "owner_counts_as_saudi": True},
              number)
        grant = {"delegate_account_id": DELEGATE, "services": ["worker.join"],
                 "valid_from": "2025-03-01", "valid_until": "2025-12-31"}
        s("account.delegate_registered", OWNER, grant, E1)
        s("account.delegate_confirmed", DELEGATE, {}, E1)
        s("account.delegate_revoked", OWNER, {"delegate_account_id": DELEGATE}, E1)
        regrant = s("account.delegate_registered", OWNER, grant, E1)
        s("audit.reversal", AUDITOR,
          {"reverses_event_id": self.event_id(regrant, "account.delegation_granted"),
           "reason": "granted from a stolen session", "delegate_account_id": DELEGATE})
        s("account.agent_registered", OWNER, {"agent_account_id": AGENT})
        s("account.login", OWNER)
        s("account.login_failed", OWNER, {"reason": "bad_otp"})
        s("account.email_changed", OWNER, {"email": "owner@example.sa"})
        s("establishment.activity_change", OWNER, {"activity": "wholesale_trade"}, E1)
        s("establishment.branch_add", OWNER, {"branch_id": "B1", "city": "Jeddah"}, E1)
        for visa in ("V1", "V2"):
            s("visa.issue", OWNER,
              {"visa_id": visa, "nationality": "IND", "profession": "salesman"}, E1)
        s("visa.cancel", OWNER, {"visa_id": "V2"}, E1)
        s("worker.join", OWNER,
          {"worker_id": SAUDI, "nationality": "SAU", "saudi_category": "saudi",
           "profession": "manager", "wage_sar": 6000}, E1)
        for worker, iqama in ((EXPAT1, "2026-03-01"), (EXPAT2, "2026-06-01")):
            s("worker.join", OWNER,
              {"worker_id": worker, "nationality": "IND", "profession": "salesman",
               "wage_sar": 2500, "arrival_date": "2025-03-01", "iqama_expiry": iqama,
               "contract_end": "2027-02-28", "visa_id": "V1" if worker == EXPAT1 else None},
              E1)
        s("permit.issue", OWNER, {"worker_id": EXPAT1, "months": 12}, E1)
        s("permit.temporary", OWNER, {"worker_id": EXPAT2, "months": 3}, E1)
        s("permit.renew", OWNER, {"worker_id": EXPAT2, "months": 6}, E1)
        s("worker.profession_change", OWNER, {"worker_id": EXPAT1, "profession": "cashier"},
          E1)
        s("worker.branch_transfer", OWNER, {"worker_id": EXPAT2, "branch_id": "B1"}, E1)
        s("dependents.transfer", OWNER, {"worker_id": EXPAT1, "dependents": 2}, E1)
        report = s("absence.report", OWNER,
                   {"worker_id": EXPAT1, "last_seen_on": "2025-03-01"}, E1, days=1)
        s("audit.reversal", AUDITOR,
          {"reverses_event_id": self.event_id(report, "worker.absence_reported"),
           "reason": "filed with a stolen credential", "worker_id": EXPAT1})
        s("absence.report", OWNER, {"worker_id": EXPAT1}, E1)
        s("absence.cancel", OWNER, {"worker_id": EXPAT1}, E1, days=1)
        moved = s("worker.service_transfer", OWNER,
                  {"worker_id": EXPAT1, "to_establishment_id": E2, "worker_consent": True},
                  E1)
        s("audit.reversal", AUDITOR,
          {"reverses_event_id": self.event_id(moved, "worker.service_transferred"),
           "reason": "released without the owner's knowledge", "worker_id": EXPAT1})
        exit_ = s("permit.final_exit", OWNER, {"worker_id": EXPAT2}, E1)
        s("audit.reversal", AUDITOR,
          {"reverses_event_id": self.event_id(exit_, "worker.final_exit_requested"),
           "reason": "requested without the owner's knowledge", "worker_id": EXPAT2})
        s("integration.passports_sync", PASSPORTS,
          {"worker_id": EXPAT2, "kind": "iqama_renewed", "iqama_expiry": "2027-06-01"})
        s("integration.passports_sync", PASSPORTS, {"worker_id": EXPAT2, "kind": "returned"})
        for flag in (True, False):
            s("integration.imprisonment_flag", NIC, {"worker_id": EXPAT2, "imprisoned": flag})
        s("integration.passports_sync", PASSPORTS,
          {"worker_id": EXPAT2, "kind": "final_exit_confirmed"})
        s("visa.compensatory_request", OWNER, {"for_worker_id": EXPAT2}, E1)
        s("recruitment.balance_request", OWNER, {"count": 5}, E1)
        s("recruitment.disbursement_request", OWNER, {"count": 2}, E1)
        s("certificate.saudization", OWNER, {}, E1)
        s("payroll.wage_protection_upload", OWNER,
          {"month": "2025-03", "workers_total": 2, "workers_paid_as_recorded": 2}, E1)
        # Refusals: into the establishment's stream, the actor's account, and unattributed.
        s("establishment.activity_change", OWNER, {"activity": "wholesale_trade"}, E1,
          accepted=False)
        s("account.agent_registered", OWNER, {"agent_account_id": "nobody-1"},
          accepted=False)
        s("account.login", "ghost-1", accepted=False)
        s("account.login", "ghost-1", accepted=False)
        s("account.password_changed", OWNER, {"new_credential_id": "cred-owner-1b"})
        self.credentials[OWNER] = "cred-owner-1b"
        s("account.login", OWNER)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("schemas")
    ticks = itertools.count()
    start = datetime(2025, 3, 2, tzinfo=UTC)
    ledger = Ledger(f"sqlite:///{folder}/events.sqlite",
                    clock=lambda: start + timedelta(seconds=next(ticks)))
    Scenario(ledger).run()
    return [contract_record(event, position)
            for position, event in ledger.all_events(start=1, limit=100_000)]


def test_the_scenario_records_every_event_type(records: list[dict[str, Any]]) -> None:
    produced = Counter(r["event_type"] for r in records)
    missing = sorted(set(EVENT_TYPES) - set(produced))
    assert not missing, f"the scenario records no {missing}"
    streams = {r["stream"] for r in records if r["event_type"] == "request.rejected"}
    assert len(streams) == 3, "refusals land in an establishment, an account, unattributed"


def test_every_record_matches_its_model(records: list[dict[str, Any]]) -> None:
    for record in records:
        validate_record(record)
    assert {type(r.get("position")) for r in records} == {int}


def _schema(path: str) -> dict[str, Any]:
    return json.loads((ROOT / path).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _validator(path: str) -> Any:
    assert jsonschema is not None
    cls = jsonschema.Draft202012Validator
    schema = _schema(path)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.skipif(jsonschema is None, reason="jsonschema not installed: pydantic only")
def test_every_record_matches_its_schema_file(records: list[dict[str, Any]]) -> None:
    envelope = _validator("schemas/events/envelope.json")
    by_type: dict[str, Any] = {}
    for record in records:
        path = f"schemas/events/{record['event_type']}.v{record['schema_version']}.json"
        validator = by_type.get(path) or by_type.setdefault(path, _validator(path))
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(record)]
        errors += [f"envelope {e.message}" for e in envelope.iter_errors(record)]
        assert not errors, f"{record['event_type']}: {errors}"


@pytest.mark.skipif(jsonschema is None, reason="jsonschema not installed: pydantic only")
def test_request_schemas_are_valid_2020_12() -> None:
    for path in generate():
        if path.startswith("schemas/requests/"):
            jsonschema.Draft202012Validator.check_schema(_schema(path))


# -- validate_record refuses what breaks the contract -------------------------------
def _first(records: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    return copy.deepcopy(next(r for r in records if r["event_type"] == event_type))


def _broken(records: list[dict[str, Any]], event_type: str,
            changes: dict[str, Any]) -> dict[str, Any]:
    """The first record of event_type with `a__b` keys set (or deleted for KeyError)."""
    record = _first(records, event_type)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = record
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return record


@pytest.mark.parametrize(("event_type", "changes", "field"), [
    ("establishment.worker_joined", {"payload__contribution__weight_milli": 1000.0},
     "payload.contribution.weight_milli"),
    ("establishment.worker_joined", {"payload__percentage_bp": True}, "payload.percentage_bp"),
    ("worker.permit_issued", {"payload__valid_until": "31/12/2025"}, "payload.valid_until"),
    ("worker.joined", {"payload__surprise": 1}, "payload.surprise"),
    ("worker.joined", {"payload__wage_sar": KeyError}, "payload.wage_sar"),
    ("account.registered", {"request__actor__role": "king"}, "request.actor.role"),
    ("request.rejected", {"hash": "x"}, "hash"),
    ("worker.service_transferred", {"position": 0}, "position"),
])
def test_validate_record_names_the_event_type_and_field(
        records: list[dict[str, Any]], event_type: str, changes: dict[str, Any],
        field: str) -> None:
    record = _broken(records, event_type, changes)
    with pytest.raises(InvalidRecord) as raised:
        validate_record(record)
    assert event_type in str(raised.value) and field in str(raised.value), raised.value


def test_unknown_event_type_or_version_is_an_error(records: list[dict[str, Any]]) -> None:
    record = _first(records, "account.logged_in")
    with pytest.raises(InvalidRecord, match=r"unknown event type 'account\.teleported'"):
        validate_record({**record, "event_type": "account.teleported"})
    with pytest.raises(InvalidRecord, match="schema_version"):
        validate_record({**record, "schema_version": 2})
