"""Seed 001's story, by hand: an owner's password leaks; the thief files two absence
reports and releases three workers to an accomplice's establishment, from a new device
at 03:00 Riyadh; the owner keeps working from the usual laptop, before and after.

Every step is a request (a `domain.requests.parse_request` dict) submitted to a real
Ledger, each session with its own id, device, ip and hour, as the portal would send
them. `build_leak_scenario(ledger)` returns the ids a test needs:

    timeline (UTC; Riyadh is UTC+3)
    2025-01-05  owner registers, opens 1-100100, hires 3 Saudis and 6 expatriates,
                issues their permits (12 months); the accomplice registers, opens
                1-200200 and hires a Saudi (small, so medium green with one Saudi)
    2025-01..03 the owner's routine sessions (09:00-11:00 Riyadh, the laptop): logins,
                a profession change, January's and February's wage files; the
                accomplice files its wage files too (100% compliant)
    2025-03-09T20:00Z  the password leaks
    2025-03-10T00:00Z  the thief (03:00 Riyadh, a phone and an ip the owner never used):
                login, two absence reports, three transfers out to 1-200200
    2025-03-10, 03-12  the owner, as usual: logins, a profession change, a hire and
                its permit, from the laptop
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.decide import Outcome
from domain.ledger import Ledger
from domain.requests import parse_request

OWNER = "1012345678"
ACCOMPLICE = "1098765432"
ESTABLISHMENT = "1-100100"
RECEIVER = "1-200200"
OWNER_CREDENTIAL = "cred-1012345678-1"
ACCOMPLICE_CREDENTIAL = "cred-1098765432-1"
OWNER_DEVICE, OWNER_IP = "dev-owner-laptop", "5.42.10.20"
ACCOMPLICE_DEVICE, ACCOMPLICE_IP = "dev-accomplice-pc", "31.166.5.6"
THIEF_DEVICE, THIEF_IP = "dev-thief-phone", "185.220.101.7"
THIEF_SESSION = "s-thief-1"
LEAKED_AT = "2025-03-09T20:00:00.000000Z"
SAUDIS = ("1000000101", "1000000102", "1000000103")
EXPATS = ("2000000201", "2000000202", "2000000203", "2000000204", "2000000205",
          "2000000206")
REPORTED = EXPATS[:2]
TRANSFERRED = EXPATS[2:5]
LATE_HIRE = "2000000207"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.0.0"
PHONE = "Mozilla/5.0 (Linux; Android 14; SM-S918B) Chrome/124.0.6367.82 Mobile"


@dataclass(frozen=True)
class LeakScenario:
    owner_account_id: str
    owner_credential_id: str
    owner_device_id: str
    owner_ip: str
    establishment_id: str
    receiving_establishment_id: str
    accomplice_account_id: str
    thief_session_id: str
    thief_device_id: str
    thief_ip: str
    transferred_worker_ids: tuple[str, ...]
    reported_worker_ids: tuple[str, ...]
    thief_request_ids: tuple[str, ...]
    owner_request_ids_before: tuple[str, ...]
    owner_request_ids_after: tuple[str, ...]
    leaked_at: str  # UTC, ISO 8601
    thief_started_at: str
    thief_ended_at: str


@dataclass
class _Session:
    """One sitting: who, from where, when; requests 40 seconds apart."""

    book: _Book
    account_id: str
    credential_id: str
    device_id: str
    ip: str
    user_agent: str
    at: datetime
    session_id: str
    requests: list[str] = field(default_factory=list)

    def send(self, service: str, payload: dict[str, Any] | None = None,
             establishment_id: str | None = None) -> Outcome:
        request_id = f"leak-r{next(self.book.numbers):03d}"
        request = {
            "request_id": request_id, "service": service,
            "occurred_at": self.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "channel": "portal",
            "actor": {"account_id": self.account_id, "role": "owner", "on_behalf_of": None},
            "session_id": self.session_id,
            "auth": {"method": "password", "credential_id": self.credential_id},
            "client": {"ip": self.ip, "device_id": self.device_id,
                       "user_agent": self.user_agent},
            "establishment_id": establishment_id, "payload": payload or {}}
        outcome = self.book.ledger.submit(parse_request(request))
        assert outcome.accepted, f"{service} refused: {outcome.rule}: {outcome.message}"
        self.requests.append(request_id)
        self.at += timedelta(seconds=40)
        return outcome


@dataclass
class _Book:
    ledger: Ledger
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    sessions: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def owner(self, when: str) -> _Session:
        return self._session(OWNER, OWNER_CREDENTIAL, OWNER_DEVICE, OWNER_IP, BROWSER, when)

    def accomplice(self, when: str) -> _Session:
        return self._session(ACCOMPLICE, ACCOMPLICE_CREDENTIAL, ACCOMPLICE_DEVICE,
                             ACCOMPLICE_IP, BROWSER, when)

    def _session(self, account: str, credential: str, device: str, ip: str, agent: str,
                 when: str, session_id: str | None = None) -> _Session:
        at = datetime.fromisoformat(when).replace(tzinfo=UTC)
        return _Session(self, account, credential, device, ip, agent, at,
                        session_id or f"s-{account}-{next(self.sessions)}")


def _expat(worker_id: str, arrived: str) -> dict[str, Any]:
    return {"worker_id": worker_id, "nationality": "IND", "profession": "mason",
            "wage_sar": 1500, "arrival_date": arrived, "iqama_expiry": "2027-01-01"}


def _saudi(worker_id: str) -> dict[str, Any]:
    return {"worker_id": worker_id, "nationality": "SAU", "saudi_category": "saudi",
            "profession": "accountant", "wage_sar": 6000}


def _open_file(session: _Session, number: str, owner_counts: bool) -> None:
    session.send("establishment.open_file",
                 {"name": f"Establishment {number}", "commercial_registration": "1010101010",
                  "activity": "construction", "city": "Riyadh",
                  "owner_counts_as_saudi": owner_counts}, number)


def _wages(session: _Session, number: str, month: str, total: int) -> None:
    session.send("payroll.wage_protection_upload",
                 {"month": month, "workers_total": total, "workers_paid_as_recorded": total},
                 number)


def _before(book: _Book) -> list[str]:
    """The owner's and the accomplice's months before the leak."""
    s = book.owner("2025-01-05T06:00:00")
    s.send("account.owner_registered", {"email": "owner@example.sa"})
    _open_file(s, ESTABLISHMENT, True)
    for worker in SAUDIS:
        s.send("worker.join", _saudi(worker), ESTABLISHMENT)
    for worker in EXPATS:
        s.send("worker.join", _expat(worker, "2025-01-01"), ESTABLISHMENT)
        s.send("permit.issue", {"worker_id": worker, "months": 12}, ESTABLISHMENT)
    owner = list(s.requests)

    a = book.accomplice("2025-01-05T07:30:00")
    a.send("account.owner_registered", {"email": "accomplice@example.sa"})
    _open_file(a, RECEIVER, False)
    a.send("worker.join", _saudi("1000000301"), RECEIVER)

    routine: list[tuple[str, str, dict[str, Any]]] = [
        ("2025-01-12T06:30:00", "worker.profession_change",
         {"worker_id": EXPATS[5], "profession": "carpenter"}),
        ("2025-02-02T07:00:00", "payroll.wage_protection_upload",
         {"month": "2025-01", "workers_total": 9, "workers_paid_as_recorded": 9}),
        ("2025-02-16T06:15:00", "certificate.saudization", {}),
        ("2025-03-02T07:10:00", "payroll.wage_protection_upload",
         {"month": "2025-02", "workers_total": 9, "workers_paid_as_recorded": 9}),
        ("2025-03-05T06:40:00", "worker.profession_change",
         {"worker_id": EXPATS[5], "profession": "mason"}),
    ]
    for when, service, payload in routine:
        s = book.owner(when)
        s.send("account.login")
        s.send(service, payload, ESTABLISHMENT)
        owner += s.requests
    for when, month in (("2025-02-03T08:00:00", "2025-01"), ("2025-03-03T08:00:00",
                                                              "2025-02")):
        a = book.accomplice(when)
        a.send("account.login")
        _wages(a, RECEIVER, month, 1)
    return owner


def _thief(book: _Book) -> _Session:
    """03:00 Riyadh, a phone and an ip the owner never used, the owner's password."""
    t = book._session(OWNER, OWNER_CREDENTIAL, THIEF_DEVICE, THIEF_IP, PHONE,
                      "2025-03-10T00:00:00", THIEF_SESSION)
    t.send("account.login")
    for worker in REPORTED:
        t.send("absence.report", {"worker_id": worker}, ESTABLISHMENT)
    for worker in TRANSFERRED:
        t.send("worker.service_transfer", {"worker_id": worker,
                                           "to_establishment_id": RECEIVER,
                                           "worker_consent": True}, ESTABLISHMENT)
    return t


def _after(book: _Book) -> list[str]:
    """The owner, unaware, keeps working as usual."""
    s = book.owner("2025-03-10T06:30:00")
    s.send("account.login")
    s.send("worker.profession_change", {"worker_id": EXPATS[5], "profession": "carpenter"},
           ESTABLISHMENT)
    later = book.owner("2025-03-12T06:45:00")
    later.send("account.login")
    later.send("worker.join", _expat(LATE_HIRE, "2025-03-01"), ESTABLISHMENT)
    later.send("permit.issue", {"worker_id": LATE_HIRE, "months": 12}, ESTABLISHMENT)
    return s.requests + later.requests


def build_leak_scenario(ledger: Ledger) -> LeakScenario:
    book = _Book(ledger)
    before = _before(book)
    thief = _thief(book)
    after = _after(book)
    first = datetime.fromisoformat("2025-03-10T00:00:00").replace(tzinfo=UTC)
    last = thief.at - timedelta(seconds=40)
    return LeakScenario(
        owner_account_id=OWNER, owner_credential_id=OWNER_CREDENTIAL,
        owner_device_id=OWNER_DEVICE, owner_ip=OWNER_IP, establishment_id=ESTABLISHMENT,
        receiving_establishment_id=RECEIVER, accomplice_account_id=ACCOMPLICE,
        thief_session_id=THIEF_SESSION, thief_device_id=THIEF_DEVICE, thief_ip=THIEF_IP,
        transferred_worker_ids=TRANSFERRED, reported_worker_ids=REPORTED,
        thief_request_ids=tuple(thief.requests), owner_request_ids_before=tuple(before),
        owner_request_ids_after=tuple(after), leaked_at=LEAKED_AT,
        thief_started_at=first.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        thief_ended_at=last.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


__all__ = ["LeakScenario", "build_leak_scenario"]
