"""Every projection's fold on hand-written contract records, row for row.

A `Book` writes records as the ledger would: one request at a time, each of its events
in its stream with the next stream version, the hash chain, the next store position,
and every record checked against the event contract (domain.events.validate_record).
The rows are folded with `MemoryRows`, through the projection and those it reads
(catalog.with_requirements), and compared with the rows written out in full.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from consumers.projection_runner import ProjectionHandler
from consumers.runtime import Delivery
from domain.chain import GENESIS, chain_hash, hashed_body
from domain.events import validate_record
from domain.identifiers import account_stream, establishment_stream, event_id, worker_stream
from domain.ingest import ingest
from domain.ledger import Ledger
from projections import queries
from projections.catalog import ALL, with_requirements
from projections.database import projections_engine
from projections.rows import MemoryRows, Record, fold_all
from projections.statistics import hijri_month
from projections.trail import TRAIL
from simulator import simulate
from tests.test_credential_audit import all_records
from tests.test_ledger_properties import counting_clock

OWNER_A, OWNER_B = "1000000011", "1000000012"  # the owners of 1-100 and 2-200
DELEGATE = "1000000201"
RECORDED = datetime(2026, 1, 1, tzinfo=UTC)


def est(number: str) -> str:
    return str(establishment_stream(number))


def wkr(worker_id: str) -> str:
    return str(worker_stream(worker_id))


def ts(at: str) -> str:
    """'2025-03-01 10:15' -> the contract's timestamp."""
    return datetime.fromisoformat(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Book:
    """Contract records as the ledger records them, for a hand-written history."""

    records: list[Record] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    def request(self, service: str, at: str, *, number: str | None = None,
                asked: dict[str, Any] | None = None, actor: str = OWNER_A,
                role: str = "owner", on_behalf_of: str | None = None, channel: str = "portal",
                method: str = "password_otp", ip: str = "51.36.94.75",
                device: str | None = None,
                user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0",
                ) -> Request:
        self.requests += 1
        context = {
            "request_id": f"r-{self.requests:06d}", "service": service, "channel": channel,
            "actor": {"account_id": actor, "role": role, "on_behalf_of": on_behalf_of},
            "session_id": f"s-{actor}-{at[:10]}",
            "auth": {"method": method, "credential_id": f"cred-{actor}-1"},
            "client": {"ip": ip, "device_id": device or f"dev-{actor}",
                       "user_agent": user_agent},
            # what was asked: the establishment the request named, and its payload
            "establishment_id": number, "payload": asked or {},
        }
        return Request(self, context, ts(at))

    def since(self, mark: int) -> list[Record]:
        return self.records[mark:]

    def record(self, request: Request, event_type: str, payload: dict[str, Any],
               stream: str, establishment_id: str | None) -> Record:
        version = self.versions.get(stream, 0) + 1
        body: Record = {
            "event_id": event_id(uuid.UUID(stream), version),
            "event_type": event_type, "schema_version": 1, "stream": stream,
            "stream_version": version, "establishment_id": establishment_id,
            "occurred_at": request.occurred_at,
            "recorded_at": (RECORDED + timedelta(microseconds=len(self.records))
                            ).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "request": request.context, "payload": payload,
            "prev_hash": self.hashes.get(stream, GENESIS),
        }
        body["hash"] = chain_hash(hashed_body(body))
        record = {**body, "position": len(self.records) + 1}
        validate_record(record)  # the contract, exactly as consumers read it
        self.versions[stream], self.hashes[stream] = version, body["hash"]
        self.records.append(record)
        return record


@dataclass
class Request:
    book: Book
    context: dict[str, Any]
    occurred_at: str

    def emit(self, event_type: str, payload: dict[str, Any], *, stream: str,
             establishment_id: str | None) -> Record:
        return self.book.record(self, event_type, payload, stream, establishment_id)


# -- requests as the domain records them -----------------------------------------------
def open_file(book: Book, number: str, owner: str, at: str, *, activity: str = "retail_trade",
              city: str = "Riyadh", band: str = "medium_green") -> list[Record]:
    asked = {"name": f"Establishment {number}", "commercial_registration": "1010123456",
             "activity": activity, "city": city}
    q = book.request("establishment.open_file", at, number=number, asked=asked, actor=owner)
    opened = q.emit("establishment.file_opened", {
        **asked, "owner_counts_as_saudi": True, "owner_account_id": owner},
        stream=est(number), establishment_id=number)
    changed = q.emit("establishment.band_changed", {  # the first assessment: from no band
        "from_band": None, "to_band": band, "percentage_bp": 0, "average_bp": 0,
        "headcount": 0, "size": "micro", "cause_event_id": opened["event_id"]},
        stream=est(number), establishment_id=number)
    return [opened, changed]


def saudi(worker_id: str, *, wage: int = 5000, part_time: bool = False,
          disabled: bool = False, category: str = "saudi", nationality: str = "SAU",
          branch: str | None = None, profession: str = "accountant") -> dict[str, Any]:
    return {"id_kind": "national_id" if worker_id[0] == "1" else "iqama",
            "worker_id": worker_id, "nationality": nationality, "saudi_category": category,
            "profession": profession, "wage_sar": wage, "part_time": part_time,
            "disabled": disabled, "branch_id": branch, "arrival_date": None,
            "iqama_expiry": None if worker_id[0] == "1" else "2026-06-30",
            "contract_end": None, "visa_id": None}


def expat(worker_id: str, *, profession: str = "mason", wage: int = 1500,
          iqama_expiry: str = "2026-02-05") -> dict[str, Any]:
    return {"id_kind": "iqama", "worker_id": worker_id, "nationality": "IND",
            "saudi_category": None, "profession": profession, "wage_sar": wage,
            "part_time": False, "disabled": False, "branch_id": None,
            "arrival_date": "2025-01-01", "iqama_expiry": iqama_expiry,
            "contract_end": "2026-12-31", "visa_id": None}


def contribution(terms: dict[str, Any]) -> dict[str, Any]:
    """How the worker counts (domain.nitaqat.contribution with the default rules)."""
    if terms["saudi_category"] is None:
        return {"saudi": False, "weight_milli": 1000, "disabled": False}
    if terms["disabled"] and terms["wage_sar"] >= 3000:
        return {"saudi": True, "weight_milli": 0, "disabled": True}
    if terms["part_time"]:
        return {"saudi": True, "weight_milli": 500, "disabled": False}
    weight = 1000 if terms["wage_sar"] >= 4000 else 500 if terms["wage_sar"] >= 3000 else 0
    return {"saudi": True, "weight_milli": weight, "disabled": False}


def hire(book: Book, number: str, terms: dict[str, Any], at: str, percentage_bp: int,
         owner: str = OWNER_A) -> list[Record]:
    asked = {k: v for k, v in terms.items() if k != "id_kind" and v is not None}
    q = book.request("worker.join", at, number=number, asked=asked, actor=owner)
    joined = q.emit("worker.joined", terms, stream=wkr(terms["worker_id"]),
                    establishment_id=number)
    counted = q.emit("establishment.worker_joined", {
        "worker_id": terms["worker_id"], "via": "hire", "contribution": contribution(terms),
        "percentage_bp": percentage_bp, "visa_id": None},
        stream=est(number), establishment_id=number)
    return [joined, counted]


def worker_event(book: Book, service: str, at: str, worker_id: str, number: str | None,
                 event_type: str, payload: dict[str, Any], **who: Any) -> Record:
    q = book.request(service, at, number=number, asked={"worker_id": worker_id}, **who)
    return q.emit(event_type, payload, stream=wkr(worker_id), establishment_id=number)


PASSPORTS = {"actor": "sys:passports", "role": "system", "channel": "integration",
             "method": "certificate", "ip": "10.250.0.10", "device": "int-passports",
             "user_agent": "nic-gateway/2.3 (passports)"}


def left(book: Book, worker_id: str, number: str, at: str, kind: str,
         terms: dict[str, Any], counted: bool, percentage_bp: int) -> list[Record]:
    q = book.request("integration.passports_sync", at,
                     asked={"worker_id": worker_id, "kind": kind}, **PASSPORTS)
    gone = q.emit("worker.left_kingdom", {"kind": kind}, stream=wkr(worker_id),
                  establishment_id=number)
    out = q.emit("establishment.worker_left", {
        "worker_id": worker_id, "reason": kind, "contribution": contribution(terms),
        "counted": counted, "percentage_bp": percentage_bp},
        stream=est(number), establishment_id=number)
    return [gone, out]


def refuse(book: Book, number: str | None, at: str, service: str, rule: str, message: str,
           request_payload: dict[str, Any], **who: Any) -> Record:
    q = book.request(service, at, number=number, asked=request_payload, **who)
    stream = est(number) if number else str(account_stream(who.get("actor", OWNER_A)))
    return q.emit("request.rejected", {"rule": rule, "message": message, "service": service,
                                       "request_payload": request_payload},
                  stream=stream, establishment_id=number)


def transfer(book: Book, worker_id: str, terms: dict[str, Any], at: str, *, source: str,
             to: str, **who: Any) -> list[Record]:
    q = book.request("worker.service_transfer", at, number=source,
                     asked={"worker_id": worker_id, "to_establishment_id": to,
                            "worker_consent": True}, **who)
    moved = q.emit("worker.service_transferred", {
        "from_establishment_id": source, "to_establishment_id": to,
        "basis": "employer_release", "employer_months_late": 0},
        stream=wkr(worker_id), establishment_id=to)
    out = q.emit("establishment.worker_left", {
        "worker_id": worker_id, "reason": "service_transfer",
        "contribution": contribution(terms), "counted": True, "percentage_bp": 10000,
        "to_establishment_id": to}, stream=est(source), establishment_id=source)
    into = q.emit("establishment.worker_joined", {
        "worker_id": worker_id, "via": "service_transfer",
        "contribution": contribution(terms), "percentage_bp": 0,
        "from_establishment_id": source}, stream=est(to), establishment_id=to)
    return [moved, out, into]


def folded(names: list[str], records: Iterable[Record],
           rows: MemoryRows | None = None) -> MemoryRows:
    rows = rows if rows is not None else MemoryRows()
    fold_all(with_requirements(names), rows, records)
    return rows


# -- the catalogue ---------------------------------------------------------------------
def test_requirements_come_first_and_in_catalogue_order() -> None:
    assert [p.name for p in with_requirements(["statistics"])] == \
        ["workers", "trail", "statistics"]
    assert [p.name for p in with_requirements(["permits"])] == ["workers", "permits"]
    assert [p.name for p in with_requirements(["establishments"])] == ["establishments"]
    assert [p.name for p in with_requirements([p.name for p in ALL])] == \
        [p.name for p in ALL]
    with pytest.raises(KeyError, match="unknown"):
        with_requirements(["nitaqat"])


# -- workers ---------------------------------------------------------------------------
W1, W2, W3, S1, G1 = "2000000101", "2000000102", "2000000103", "1000000101", "2000000105"


def test_workers_follow_a_working_life() -> None:
    book = Book()
    open_file(book, "1-100", OWNER_A, "2025-01-04 08:00")
    open_file(book, "2-200", OWNER_B, "2025-01-04 09:00", city="Jeddah")
    w1 = expat(W1)
    hire(book, "1-100", w1, "2025-01-05 09:30", 0)
    rows = folded(["workers"], book.records)
    start = rows.get("workers", (wkr(W1),))
    assert start == {
        "stream": wkr(W1), "worker_id": W1, "id_kind": "iqama", "nationality": "IND",
        "nationality_group": "expatriate", "profession": "mason", "employer": "1-100",
        "branch_id": None, "status": "active", "permit_type": None,
        "permit_valid_until": None, "iqama_expiry": "2026-02-05", "absence_filed_by": None,
        "absence_filed_on": None, "imprisoned": False, "dependents": 0, "wage_sar": 1500,
        "employed_since": "2025-01-05", "last_event_id": book.records[4]["event_id"]}

    def step(service: str, at: str, event_type: str, payload: dict[str, Any],
             number: str | None = "1-100", **who: Any) -> dict[str, Any]:
        record = worker_event(book, service, at, W1, number, event_type, payload, **who)
        fold_all(with_requirements(["workers"]), rows, [record])
        row = rows.get("workers", (wkr(W1),))
        assert row is not None and row["last_event_id"] == record["event_id"]
        return row

    row = step("permit.issue", "2025-01-06 10:00", "worker.permit_issued", {
        "permit_type": "standard", "months": 12, "valid_from": "2025-01-06",
        "valid_until": "2026-01-05", "levy_sar_a_month": 800, "fee_sar": 9700})
    assert (row["permit_type"], row["permit_valid_until"]) == ("standard", "2026-01-05")
    row = step("worker.profession_change", "2025-02-10 11:00", "worker.profession_changed",
               {"from_profession": "mason", "to_profession": "driver"})
    assert row["profession"] == "driver"
    q = book.request("establishment.branch_add", "2025-02-11 08:00", number="1-100",
                     asked={"branch_id": "BR-01", "city": "Riyadh"})
    fold_all(with_requirements(["workers"]), rows, [q.emit("establishment.branch_added",
                                {"branch_id": "BR-01", "city": "Riyadh"},
                                stream=est("1-100"), establishment_id="1-100")])
    row = step("worker.branch_transfer", "2025-02-12 08:00", "worker.branch_transferred",
               {"from_branch_id": None, "to_branch_id": "BR-01"})
    assert row["branch_id"] == "BR-01"
    row = step("absence.report", "2025-03-01 07:45", "worker.absence_reported",
               {"last_seen_on": "2025-02-27"})
    assert (row["status"], row["absence_filed_by"], row["absence_filed_on"]) == \
        ("absence_reported", "1-100", "2025-03-01")
    report = book.records[-1]["event_id"]
    row = step("absence.cancel", "2025-03-05 12:00", "worker.absence_cancelled",
               {"report_event_id": report})
    assert (row["status"], row["absence_filed_by"], row["absence_filed_on"]) == \
        ("active", None, None)
    step("dependents.transfer", "2025-03-10 09:00", "worker.dependents_transferred",
         {"dependents": 2})
    row = step("dependents.transfer", "2025-03-20 09:00", "worker.dependents_transferred",
               {"dependents": 1})
    assert row["dependents"] == 3
    nic = {"actor": "sys:nic", "role": "system", "channel": "integration",
           "method": "certificate", "ip": "10.250.0.11", "device": "int-nic"}
    row = step("integration.imprisonment_flag", "2025-04-01 03:00",
               "worker.imprisonment_flagged", {"imprisoned": True}, **nic)
    assert row["imprisoned"] is True
    row = step("integration.imprisonment_flag", "2025-04-15 03:00",
               "worker.imprisonment_flagged", {"imprisoned": False}, **nic)
    assert row["imprisoned"] is False
    row = step("integration.passports_sync", "2025-05-01 03:00", "worker.iqama_renewed",
               {"iqama_expiry": "2027-02-05"}, **PASSPORTS)
    assert row["iqama_expiry"] == "2027-02-05"
    row = step("permit.renew", "2025-07-20 10:00", "worker.permit_renewed", {
        "permit_type": "standard", "months": 12, "valid_from": "2026-01-06",
        "valid_until": "2027-01-05", "levy_sar_a_month": 800, "fee_sar": 9700})
    assert row["permit_valid_until"] == "2027-01-05"
    moved = transfer(book, W1, w1, "2025-08-01 10:00", source="1-100", to="2-200",
                     actor=OWNER_A)
    fold_all(with_requirements(["workers"]), rows, moved)
    assert rows.tables["workers"][(wkr(W1),)] == {
        "stream": wkr(W1), "worker_id": W1, "id_kind": "iqama", "nationality": "IND",
        "nationality_group": "expatriate", "profession": "driver", "employer": "2-200",
        "branch_id": None, "status": "active", "permit_type": "standard",
        "permit_valid_until": "2027-01-05", "iqama_expiry": "2027-02-05",
        "absence_filed_by": None, "absence_filed_on": None, "imprisoned": False,
        "dependents": 3, "wage_sar": 1500, "employed_since": "2025-08-01",
        "last_event_id": moved[0]["event_id"]}
    # Folding the whole book at once gives the same rows as step by step.
    assert folded(["workers"], book.records).tables == rows.tables


def test_workers_leaving_the_kingdom_and_who_counts_as_saudi() -> None:
    book = Book()
    open_file(book, "1-100", OWNER_A, "2025-01-04 08:00")
    q = book.request("establishment.branch_add", "2025-01-04 08:30", number="1-100",
                     asked={"branch_id": "BR-01", "city": "Riyadh"})
    q.emit("establishment.branch_added", {"branch_id": "BR-01", "city": "Riyadh"},
           stream=est("1-100"), establishment_id="1-100")
    w2, w3 = expat(W2), expat(W3, profession="electrician", wage=2200)
    hire(book, "1-100", w2, "2025-01-07 09:00", 0)
    hire(book, "1-100", w3, "2025-01-07 09:05", 0)
    hire(book, "1-100", saudi(S1, branch="BR-01"), "2025-01-08 09:00", 3333)
    hire(book, "1-100", saudi(G1, category="gcc", nationality="KWT"), "2025-01-08 09:10",
         5000)
    left(book, W2, "1-100", "2025-06-01 03:00", "exit_without_return", w2, True, 6666)
    exit_request = worker_event(book, "permit.final_exit", "2025-06-10 10:00", W3, "1-100",
                                "worker.final_exit_requested", {})
    gone = left(book, W3, "1-100", "2025-06-20 03:00", "final_exit_confirmed", w3, True,
                10000)
    # An event of a stream whose worker never joined here is no row.
    orphan = worker_event(book, "integration.passports_sync", "2025-06-21 03:00",
                          "2000000999", None, "worker.returned", {}, **PASSPORTS)
    rows = folded(["workers"], book.records).tables["workers"]
    assert (wkr("2000000999"),) not in rows and orphan["position"] == len(book.records)
    assert {k: (r["status"], r["employer"], r["nationality_group"]) for k, r in rows.items()} \
        == {(wkr(W2),): ("left_kingdom", None, "expatriate"),
            (wkr(W3),): ("final_exit", None, "expatriate"),
            (wkr(S1),): ("active", "1-100", "saudi"),
            (wkr(G1),): ("active", "1-100", "gcc")}
    assert rows[(wkr(S1),)] == {
        "stream": wkr(S1), "worker_id": S1, "id_kind": "national_id", "nationality": "SAU",
        "nationality_group": "saudi", "profession": "accountant", "employer": "1-100",
        "branch_id": "BR-01", "status": "active", "permit_type": None,
        "permit_valid_until": None, "iqama_expiry": None, "absence_filed_by": None,
        "absence_filed_on": None, "imprisoned": False, "dependents": 0, "wage_sar": 5000,
        "employed_since": "2025-01-08", "last_event_id": event_id(worker_stream(S1), 1)}
    assert rows[(wkr(W3),)]["last_event_id"] == gone[0]["event_id"]
    assert exit_request["stream_version"] == 2
    exit_only = folded(["workers"], book.records[:exit_request["position"]])
    assert exit_only.tables["workers"][(wkr(W3),)]["status"] == "final_exit_requested"


# -- permits ---------------------------------------------------------------------------
def _permit(book: Book, kind: str, at: str, worker_id: str, months: int, start: str,
            until: str, permit_type: str = "standard", levy: int = 800) -> Record:
    service = {"worker.permit_issued": "permit.issue", "worker.permit_renewed": "permit.renew"}
    if permit_type == "temporary":
        service["worker.permit_issued"] = "permit.temporary"
    return worker_event(book, service[kind], at, worker_id, "1-100", kind, {
        "permit_type": permit_type, "months": months, "valid_from": start,
        "valid_until": until, "levy_sar_a_month": levy,
        "fee_sar": 100 * months // 12 + levy * months})


def test_permits_issue_and_renewals_keep_the_first_issue() -> None:
    book = Book()
    open_file(book, "1-100", OWNER_A, "2025-01-04 08:00")
    hire(book, "1-100", expat(W1), "2025-01-05 09:30", 0)
    hire(book, "1-100", expat(W2), "2025-01-05 09:40", 0)
    issued = _permit(book, "worker.permit_issued", "2025-01-06 10:00", W1, 6, "2025-01-06",
                     "2025-07-05")
    renewed = _permit(book, "worker.permit_renewed", "2025-06-01 10:00", W1, 12,
                      "2025-07-06", "2026-07-05")
    again = _permit(book, "worker.permit_renewed", "2026-05-01 10:00", W1, 3, "2026-07-06",
                    "2026-10-05", levy=700)
    temporary = _permit(book, "worker.permit_issued", "2025-01-06 11:00", W2, 3,
                        "2025-01-06", "2025-04-05", permit_type="temporary")
    rows = folded(["permits"], book.records)
    assert rows.tables["permits"] == {
        (wkr(W1),): {"stream": wkr(W1), "worker_id": W1, "establishment_id": "1-100",
                     "permit_type": "standard", "first_issued_on": "2025-01-06",
                     "valid_from": "2026-07-06", "valid_until": "2026-10-05",
                     "renewals": 2, "last_event_id": again["event_id"]},
        (wkr(W2),): {"stream": wkr(W2), "worker_id": W2, "establishment_id": "1-100",
                     "permit_type": "temporary", "first_issued_on": "2025-01-06",
                     "valid_from": "2025-01-06", "valid_until": "2025-04-05",
                     "renewals": 0, "last_event_id": temporary["event_id"]}}

    def history_row(r: Record, kind: str) -> dict[str, Any]:
        p = r["payload"]
        return {"event_id": r["event_id"], "stream": r["stream"],
                "worker_id": W1 if r["stream"] == wkr(W1) else W2,
                "establishment_id": "1-100", "kind": kind, "permit_type": p["permit_type"],
                "months": p["months"], "valid_from": p["valid_from"],
                "valid_until": p["valid_until"], "fee_sar": p["fee_sar"],
                "levy_sar_a_month": p["levy_sar_a_month"], "occurred_at": r["occurred_at"],
                "position": r["position"]}

    assert rows.history["permit_events"] == [
        history_row(issued, "issued"), history_row(renewed, "renewed"),
        history_row(again, "renewed"), history_row(temporary, "issued")]
    assert [e["fee_sar"] for e in rows.history["permit_events"]] == [4850, 9700, 2125, 2425]
    # A new permit (after the temporary one ended) starts a new count.
    standard = _permit(book, "worker.permit_issued", "2025-04-01 10:00", W2, 12,
                       "2025-04-06", "2026-04-05")
    fold_all(with_requirements(["permits"]), rows, [standard])
    assert rows.tables["permits"][(wkr(W2),)] | {"last_event_id": None} == {
        "stream": wkr(W2), "worker_id": W2, "establishment_id": "1-100",
        "permit_type": "standard", "first_issued_on": "2025-04-06",
        "valid_from": "2025-04-06", "valid_until": "2026-04-05", "renewals": 0,
        "last_event_id": None}


def test_a_transferred_workers_permit_is_the_new_employers() -> None:
    """The permit follows the worker to the employer who will renew it."""
    book = Book()
    open_file(book, "1-100", OWNER_A, "2025-01-04 08:00")
    open_file(book, "2-200", OWNER_B, "2025-01-04 09:00")
    w1 = expat(W1)
    hire(book, "1-100", w1, "2025-01-05 09:30", 0)
    _permit(book, "worker.permit_issued", "2025-01-06 10:00", W1, 12, "2025-01-06",
            "2026-01-05")
    transfer(book, W1, w1, "2025-08-01 10:00", source="1-100", to="2-200")
    rows = folded(["permits"], book.records)
    assert rows.tables["workers"][(wkr(W1),)]["employer"] == "2-200"
    assert rows.tables["permits"][(wkr(W1),)]["establishment_id"] == "2-200"


# -- establishments --------------------------------------------------------------------
def test_establishments_count_weighted_workers_bands_branches_wages_refusals() -> None:
    book = Book()
    opening = open_file(book, "1-100", OWNER_A, "2025-01-05 08:00")
    mark = len(book.records)
    rows = folded(["establishments"], book.records)
    assert rows.tables["establishments"][("1-100",)] == {
        "establishment_id": "1-100", "name": "Establishment 1-100",
        "commercial_registration": "1010123456", "activity": "retail_trade",
        "city": "Riyadh", "owner_account_id": OWNER_A, "opened_on": "2025-01-05",
        "branches": "[]", "saudis": 0, "saudi_weight_milli": 0, "disabled_saudis": 0,
        "expatriates": 0, "weighted_saudis_milli": 0, "headcount": 0, "percentage_bp": 0,
        "size": "micro", "band": "medium_green", "band_since": opening[1]["occurred_at"],
        "average_bp": 0, "last_wage_month": None, "wage_compliance_bp": None,
        "refusals": 0, "last_occurred_at": opening[1]["occurred_at"]}
    # Nine Saudis at full weight, a disabled Saudi (3,500 SAR), a part-time Saudi, two
    # expatriates: 11 Saudis weigh 9 x 1000 + 500, and the disabled one counts 4 (10% of
    # 11 Saudis is 1): 13,500 milli; 13,500 / (13,500 + 2,000) = 87.09%.
    for i in range(9):
        hire(book, "1-100", saudi(f"10000003{i:02d}"), f"2025-01-06 09:{i:02d}", 10000)
    hire(book, "1-100", saudi("1000000350", wage=3500, disabled=True), "2025-01-06 10:00",
         10000)
    hire(book, "1-100", saudi("1000000351", wage=3000, part_time=True), "2025-01-06 10:05",
         10000)
    e1, e2 = expat(W1), expat(W2)
    hire(book, "1-100", e1, "2025-01-07 09:00", 9310)
    last = hire(book, "1-100", e2, "2025-01-07 09:05", 8709)
    q = Request(book, last[0]["request"], last[0]["occurred_at"])  # the hire's request
    band = q.emit("establishment.band_changed", {
        "from_band": "medium_green", "to_band": "high_green", "percentage_bp": 8709,
        "average_bp": 9120, "headcount": 13, "size": "small",
        "cause_event_id": last[1]["event_id"]}, stream=est("1-100"), establishment_id="1-100")
    fold_all(with_requirements(["establishments"]), rows, book.since(mark))
    row = rows.tables["establishments"][("1-100",)]
    assert {k: row[k] for k in ("saudis", "saudi_weight_milli", "disabled_saudis",
                                "expatriates", "weighted_saudis_milli", "headcount",
                                "percentage_bp", "size", "band", "band_since",
                                "average_bp")} == {
        "saudis": 11, "saudi_weight_milli": 9500, "disabled_saudis": 1, "expatriates": 2,
        "weighted_saudis_milli": 13500, "headcount": 13, "percentage_bp": 8709,
        "size": "small", "band": "high_green", "band_since": band["occurred_at"],
        "average_bp": 9120}
    assert rows.history["band_history"] == [
        {"event_id": opening[1]["event_id"], "establishment_id": "1-100",
         "from_band": None, "to_band": "medium_green", "percentage_bp": 0,
         "average_bp": 0, "headcount": 0, "size": "micro",
         "cause_event_id": opening[0]["event_id"], "occurred_at": opening[1]["occurred_at"],
         "position": opening[1]["position"]},
        {"event_id": band["event_id"], "establishment_id": "1-100",
         "from_band": "medium_green", "to_band": "high_green", "percentage_bp": 8709,
         "average_bp": 9120, "headcount": 13, "size": "small",
         "cause_event_id": last[1]["event_id"], "occurred_at": band["occurred_at"],
         "position": band["position"]}]

    mark = len(book.records)
    # One expatriate leaves for good (counted out); the other is reported absent
    # (counted out), then leaves the kingdom (no longer counted: nothing moves).
    left(book, W2, "1-100", "2025-02-01 03:00", "final_exit_confirmed", e2, True, 9310)
    q = book.request("absence.report", "2025-02-02 08:00", number="1-100",
                     asked={"worker_id": W1})
    q.emit("worker.absence_reported", {"last_seen_on": "2025-01-30"}, stream=wkr(W1),
           establishment_id="1-100")
    q.emit("establishment.worker_left", {
        "worker_id": W1, "reason": "absence_report", "contribution": contribution(e1),
        "counted": True, "percentage_bp": 10000}, stream=est("1-100"),
        establishment_id="1-100")
    left(book, W1, "1-100", "2025-02-20 03:00", "exit_without_return", e1, False, 10000)
    for branch, city in (("BR-01", "Riyadh"), ("BR-02", "Jeddah")):
        q = book.request("establishment.branch_add", "2025-02-21 09:00", number="1-100",
                         asked={"branch_id": branch, "city": city})
        q.emit("establishment.branch_added", {"branch_id": branch, "city": city},
               stream=est("1-100"), establishment_id="1-100")
    for at, month, total, paid, bp in (("2025-02-03 12:00", "2025-01", 13, 13, 10000),
                                       ("2025-03-02 12:00", "2025-02", 12, 11, 9166)):
        q = book.request("payroll.wage_protection_upload", at, number="1-100",
                         asked={"month": month, "workers_total": total,
                                "workers_paid_as_recorded": paid})
        q.emit("establishment.wage_file_uploaded", {
            "month": month, "workers_total": total, "workers_paid_as_recorded": paid,
            "compliance_bp": bp}, stream=est("1-100"), establishment_id="1-100")
    refuse(book, "1-100", "2025-03-03 10:00", "permit.issue", "WORKER_NOT_EMPLOYEE",
           "2000000777 does not work for 1-100", {"worker_id": "2000000777", "months": 12})
    # A refusal outside any establishment (the actor's account) counts for none.
    refuse(book, None, "2025-03-03 10:05", "establishment.open_file", "AUTH_NOT_OWNER",
           "1000000099 is not the owner", {"name": "X"}, actor="1000000099")
    q = book.request("establishment.activity_change", "2025-03-04 09:00", number="1-100",
                     asked={"activity": "wholesale_trade"})
    changed = q.emit("establishment.activity_changed",
                     {"from_activity": "retail_trade", "to_activity": "wholesale_trade"},
                     stream=est("1-100"), establishment_id="1-100")
    fold_all(with_requirements(["establishments"]), rows, book.since(mark))
    assert rows.tables["establishments"] == {("1-100",): {
        "establishment_id": "1-100", "name": "Establishment 1-100",
        "commercial_registration": "1010123456", "activity": "wholesale_trade",
        "city": "Riyadh", "owner_account_id": OWNER_A, "opened_on": "2025-01-05",
        "branches": '["BR-01","BR-02"]', "saudis": 11, "saudi_weight_milli": 9500,
        "disabled_saudis": 1, "expatriates": 0, "weighted_saudis_milli": 13500,
        "headcount": 11, "percentage_bp": 10000, "size": "small", "band": "high_green",
        "band_since": band["occurred_at"], "average_bp": 9120, "last_wage_month": "2025-02",
        "wage_compliance_bp": 9166, "refusals": 1,
        "last_occurred_at": changed["occurred_at"]}}
    assert len(rows.history["band_history"]) == 2


def test_a_late_wage_file_for_an_earlier_month_keeps_the_last_month() -> None:
    book = Book()
    open_file(book, "1-100", OWNER_A, "2025-01-05 08:00")
    for at, month in (("2025-03-02 12:00", "2025-02"), ("2025-03-05 12:00", "2025-01")):
        q = book.request("payroll.wage_protection_upload", at, number="1-100",
                         asked={"month": month, "workers_total": 2,
                                "workers_paid_as_recorded": 2})
        q.emit("establishment.wage_file_uploaded", {
            "month": month, "workers_total": 2, "workers_paid_as_recorded": 2,
            "compliance_bp": 10000}, stream=est("1-100"), establishment_id="1-100")
    row = folded(["establishments"], book.records).tables["establishments"][("1-100",)]
    assert row["last_wage_month"] == "2025-02"


def test_establishment_events_before_the_file_is_opened_are_no_row() -> None:
    book = Book()
    refuse(book, "9-999", "2025-01-05 08:00", "permit.issue", "ESTABLISHMENT_UNKNOWN",
           "no file 9-999", {"worker_id": W1, "months": 12})
    assert folded(["establishments"], book.records).tables.get("establishments", {}) == {}


# -- the transaction trail -------------------------------------------------------------
def test_trail_a_refused_request_with_who_and_how() -> None:
    book = Book()
    open_file(book, "1-100", OWNER_A, "2025-01-04 08:00")
    refused = refuse(book, "1-100", "2025-01-20 13:45", "permit.issue", "PERMIT_ISSUE_WINDOW",
                     "2000000101 arrived 2024-09-01: more than 90 days ago",
                     {"worker_id": W1, "months": 12}, actor=DELEGATE, role="delegate",
                     on_behalf_of=OWNER_A, channel="api", method="password",
                     ip="188.48.199.185", device="dev-7f7d5a56a491",
                     user_agent="Qiwa/3.8.0 (Android 14; SM-A546E)")
    trail = folded(["trail"], book.records).tables["trail"]
    assert trail[(refused["request"]["request_id"],)] == {
        "request_id": refused["request"]["request_id"],
        "occurred_at": "2025-01-20T13:45:00.000000Z", "service": "permit.issue",
        "establishment_id": "1-100", "workers": f'["{W1}"]', "outcome": "refused",
        "rule": "PERMIT_ISSUE_WINDOW",
        "message": "2000000101 arrived 2024-09-01: more than 90 days ago",
        "actor_account_id": DELEGATE, "role": "delegate", "on_behalf_of": OWNER_A,
        "session_id": f"s-{DELEGATE}-2025-01-20", "credential_id": f"cred-{DELEGATE}-1",
        "auth_method": "password", "ip": "188.48.199.185", "device_id": "dev-7f7d5a56a491",
        "user_agent": "Qiwa/3.8.0 (Android 14; SM-A546E)", "channel": "api",
        "event_ids": f'["{refused["event_id"]}"]', "positions": f"[{refused['position']}]",
        "first_position": refused["position"]}


def test_trail_an_accepted_transfer_across_two_establishments() -> None:
    book = Book()
    open_file(book, "1-100", OWNER_A, "2025-01-04 08:00")
    open_file(book, "2-200", OWNER_B, "2025-01-04 09:00")
    w1 = expat(W1)
    hire(book, "1-100", w1, "2025-01-05 09:30", 0)
    # The employer's delegate releases the worker: recorded in the worker's stream (with
    # the receiver's number), then in each establishment's.
    moved = transfer(book, W1, w1, "2025-08-01 10:00", source="1-100", to="2-200",
                     actor=DELEGATE, role="delegate", on_behalf_of=OWNER_A)
    rows = folded(["trail"], book.records)
    row = rows.tables["trail"][(moved[0]["request"]["request_id"],)]
    assert [e["establishment_id"] for e in moved] == ["2-200", "1-100", "2-200"]
    assert {k: row[k] for k in ("service", "establishment_id", "workers", "outcome", "rule",
                                "message", "actor_account_id", "role", "on_behalf_of",
                                "event_ids", "positions", "first_position",
                                "occurred_at")} == {
        "service": "worker.service_transfer", "establishment_id": "2-200",
        "workers": f'["{W1}"]', "outcome": "accepted", "rule": None, "message": None,
        "actor_account_id": DELEGATE, "role": "delegate", "on_behalf_of": OWNER_A,
        "event_ids": orjson.dumps([e["event_id"] for e in moved]).decode(),
        "positions": orjson.dumps([e["position"] for e in moved]).decode(),
        "first_position": moved[0]["position"], "occurred_at": "2025-08-01T10:00:00.000000Z"}
    assert [e["position"] for e in moved] == sorted(e["position"] for e in moved)
    # One row a request: the hire's and the openings' rows are their own.
    assert len(rows.tables["trail"]) == 4
    # Delivered twice, an event changes nothing.
    before = rows.tables["trail"][(moved[0]["request"]["request_id"],)]
    fold_all(with_requirements(["trail"]), rows, moved[1:])
    assert rows.tables["trail"][(moved[0]["request"]["request_id"],)] == before


def test_trail_names_the_worker_of_a_worker_stream_event_from_the_workers_rows() -> None:
    book = Book()
    open_file(book, "1-100", OWNER_A, "2025-01-04 08:00")
    hire(book, "1-100", expat(W1), "2025-01-05 09:30", 0)
    issued = _permit(book, "worker.permit_issued", "2025-01-06 10:00", W1, 12, "2025-01-06",
                     "2026-01-05")
    q = book.request("account.owner_registered", "2025-01-03 08:00", actor="1000000077",
                     asked={"email": "o@example.sa"})
    registered = q.emit("account.registered", {
        "account_id": "1000000077", "role": "owner", "email": "o@example.sa",
        "credential_id": "cred-1000000077-1"}, stream=str(account_stream("1000000077")),
        establishment_id=None)
    trail = folded(["trail"], book.records).tables["trail"]
    assert trail[(issued["request"]["request_id"],)]["workers"] == f'["{W1}"]'
    account_row = trail[(registered["request"]["request_id"],)]
    assert (account_row["establishment_id"], account_row["workers"]) == (None, "[]")


# -- statistics ------------------------------------------------------------------------
def test_hijri_months() -> None:
    assert hijri_month("2025-03-01") == "1446-09"  # 1 Ramadan 1446
    assert hijri_month("2025-02-28") == "1446-08"
    assert hijri_month("2025-03-30") == "1446-10"  # 1 Shawwal 1446


def test_statistics_count_each_request_once_by_service_month_and_channel() -> None:
    book = Book()
    for at in ("2025-03-01 10:00", "2025-02-28 10:00", "2025-03-30 10:00"):
        _permit(book, "worker.permit_issued", at, W1, 12, at[:10], "2026-02-28")
    refuse(book, "1-100", "2025-03-02 10:00", "permit.issue", "PERMIT_ISSUE_WINDOW",
           "too late", {"worker_id": W1, "months": 12})
    q = book.request("permit.issue", "2025-03-03 11:00", number="1-100",
                     asked={"worker_id": W2, "months": 3}, actor="clerk-riyadh-07",
                     role="office_clerk", on_behalf_of=OWNER_A, channel="office",
                     method="national_sso")
    q.emit("worker.permit_issued", {
        "permit_type": "standard", "months": 3, "valid_from": "2025-03-03",
        "valid_until": "2025-06-02", "levy_sar_a_month": 800, "fee_sar": 2425},
        stream=wkr(W2), establishment_id="1-100")
    transfer(book, W1, expat(W1), "2025-03-04 10:00", source="1-100", to="2-200",
             channel="api")
    refuse(book, "2-200", "2025-03-05 10:00", "worker.service_transfer",
           "TRANSFER_WORKER_CONSENT", "2000000102 has not consented",
           {"worker_id": W2, "to_establishment_id": "2-200", "worker_consent": False},
           channel="api")
    hire(book, "1-100", expat(W3), "2025-03-01 23:30", 0)
    rows = folded(["statistics"], book.records)

    def stats(accepted: int, refused: int) -> dict[str, int]:
        return {"accepted": accepted, "refused": refused}

    expected = {
        ("permit.issue", "2025-03", "1446-09", "portal"): stats(1, 1),
        ("permit.issue", "2025-02", "1446-08", "portal"): stats(1, 0),
        ("permit.issue", "2025-03", "1446-10", "portal"): stats(1, 0),
        ("permit.issue", "2025-03", "1446-09", "office"): stats(1, 0),
        ("worker.service_transfer", "2025-03", "1446-09", "api"): stats(1, 1),
        ("worker.join", "2025-03", "1446-09", "portal"): stats(1, 0),
    }
    assert rows.tables["service_stats"] == {
        key: dict(zip(("service", "month", "hijri_month", "channel"), key, strict=True),
                  **counts) for key, counts in expected.items()}
    total = sum(r["accepted"] + r["refused"] for r in rows.tables["service_stats"].values())
    assert total == book.requests == len(rows.tables["trail"])


def test_a_workers_requests_come_from_the_trails_worker_rows_as_its_lists_name_them(
        tmp_path: Path) -> None:
    """`sijil worker` (projections/queries.py) reads trail_workers, one range a worker,
    where it scanned the trail for its JSON lists: the same requests, in time order, for
    every worker of a simulated history, folded by the real handler into SQLite."""
    requests = tmp_path / "requests.jsonl"
    simulate(establishments=6, months=3, seed=3, out=requests)
    ledger = Ledger(f"sqlite:///{tmp_path}/events.sqlite", clock=counting_clock())
    with requests.open("rb") as lines:
        ingest(ledger, lines, batch_size=50)
    engine = projections_engine(f"sqlite:///{tmp_path}/projections.sqlite")
    handler = ProjectionHandler(engine, ALL)
    records = all_records(ledger)
    with engine.begin() as conn:
        handler.handle(conn, [Delivery("t", 0, n, None, r) for n, r in enumerate(records)])
    handler.committed()
    with engine.connect() as conn:
        trail = [dict(r) for r in conn.execute(select(TRAIL)).mappings()]
    named: dict[str, list[tuple[str, str]]] = {}
    for row in trail:
        for worker_id in orjson.loads(row["workers"]):
            named.setdefault(worker_id, []).append((row["occurred_at"], row["request_id"]))
    assert len(named) > 20
    for worker_id, expected in named.items():
        found = queries.worker(engine, worker_id)
        assert found is not None
        assert [(r["occurred_at"], r["request_id"]) for r in found["requests"]] \
            == sorted(expected)
    engine.dispose()
