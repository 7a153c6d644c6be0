"""The fraud detector's rules (domain/fraud.py), each on hand-written records: it
fires when its condition holds and stays silent when it does not; then the detector as a
fold (projections/fraud_alerts.py) gives the in-memory detector's alerts, exactly once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from consumers.projection_runner import ProjectionHandler
from consumers.runtime import Delivery
from domain.fraud import (
    AFTER_CREDENTIAL_CHANGE,
    ALERTED_DEVICE,
    DELEGATE_OUT_OF_GRANT,
    FAILED_THEN_SUCCESS,
    OFF_HOURS,
    SENSITIVE_BURST,
    SHARED_DEVICE,
    SHARED_IP,
    UNFAMILIAR_DEVICE,
    UNFAMILIAR_IP,
    AccountState,
    ClientState,
    Detector,
    FraudSettings,
    SessionState,
    hours_before,
    sensitive,
    transfer_out,
)
from projections import fraud_alerts
from projections.rows import MemoryRows, fold_all

Record = dict[str, Any]
OWNER, OTHER = "1000000001", "1000000002"
EST, RECEIVER = "1-100", "1-200"


class History:
    """Records as the store would number them; one request, one or more events."""

    def __init__(self) -> None:
        self.positions = itertools.count(1)
        self.requests = itertools.count(1)
        self.sessions = itertools.count(1)
        self.records: list[Record] = []

    def request(self, service: str, at: str, *, account: str = OWNER, role: str = "owner",
                session: str = "s1", device: str = "d1", ip: str = "5.42.1.1",
                event_type: str | None = None, payload: dict[str, Any] | None = None,
                establishment: str | None = EST, on_behalf_of: str | None = None,
                channel: str = "portal", events: int = 1) -> str:
        request_id = f"r{next(self.requests)}"
        for n in range(events):
            position = next(self.positions)
            self.records.append({
                "event_id": f"e{position}", "event_type": event_type or _event_type(service),
                "schema_version": 1, "stream": f"stream-{account}", "stream_version": n + 1,
                "establishment_id": establishment, "occurred_at": at,
                "recorded_at": at, "position": position,
                "request": {"request_id": request_id, "service": service, "channel": channel,
                            "actor": {"account_id": account, "role": role,
                                      "on_behalf_of": on_behalf_of},
                            "session_id": session,
                            "auth": {"method": "password", "credential_id": f"c-{account}"},
                            "client": {"ip": ip, "device_id": device, "user_agent": ""}},
                "payload": payload or {}, "prev_hash": "", "hash": ""})
        return request_id

    def session(self, day: str, riyadh_hour: int, *, requests: int = 2, **context: Any
                ) -> list[str]:
        """A login and a few routine requests at that Riyadh hour."""
        context.setdefault("session", f"s{next(self.sessions)}")
        at = utc(day, riyadh_hour)
        ids = [self.request("account.login", at, establishment=None, **context)]
        ids += [self.request("worker.profession_change", at, **context)
                for _ in range(requests - 1)]
        return ids

    def habits(self, sessions: int = 6, riyadh_hour: int = 10, **context: Any) -> None:
        """An account's routine: sessions on successive January days."""
        for day in range(sessions):
            self.session(f"2025-01-{day + 2:02d}", riyadh_hour, **context)


def utc(day: str, riyadh_hour: int, minute: int = 0) -> str:
    """Riyadh is UTC+3: 03:00 Riyadh is midnight UTC."""
    hour = riyadh_hour - 3
    if hour < 0:  # the evening before, in UTC
        from datetime import date, timedelta
        day = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
        hour += 24
    return f"{day}T{hour:02d}:{minute:02d}:00.000000Z"


def _event_type(service: str) -> str:
    return {"account.login": "account.logged_in", "account.login_failed":
            "account.login_failed", "account.password_changed": "account.password_changed",
            "account.email_changed": "account.email_changed",
            "absence.report": "worker.absence_reported",
            "permit.final_exit": "worker.final_exit_requested",
            "worker.profession_change": "worker.profession_changed"}.get(service, service)


def run(h: History, settings: FraudSettings | None = None) -> Detector:
    return Detector(settings or FraudSettings()).run(h.records)


def signals(detector: Detector, request_id: str) -> tuple[str, ...]:
    scored = detector.scored(request_id)
    assert scored is not None, f"{request_id} was not scored"
    return scored.signals


# == unfamiliar device and ip ==============================================================
def test_unfamiliar_device_fires_for_a_device_the_account_never_used() -> None:
    h = History()
    first = h.session("2025-01-01", 10, device="d1")
    h.habits(device="d1")
    new = h.session("2025-02-01", 10, device="d2")
    usual = h.session("2025-02-02", 10, device="d1")
    d = run(h)
    assert UNFAMILIAR_DEVICE not in signals(d, first[0])  # no history yet: nothing to know
    assert all(UNFAMILIAR_DEVICE in signals(d, r) for r in new)
    assert all(UNFAMILIAR_DEVICE not in signals(d, r) for r in usual)


def test_a_new_device_becomes_familiar_after_a_day_without_alert() -> None:
    h = History()
    h.habits(device="d1")
    h.session("2025-02-01", 10, device="d2")
    same_day = h.session("2025-02-01", 12, device="d2")
    days_later = h.session("2025-02-03", 10, device="d2")
    d = run(h)
    assert UNFAMILIAR_DEVICE in signals(d, same_day[0])  # not a day old yet
    assert UNFAMILIAR_DEVICE not in signals(d, days_later[0])


def test_unfamiliar_ip_fires_for_an_address_the_account_never_used() -> None:
    h = History()
    h.habits(ip="5.42.1.1")
    new = h.session("2025-02-01", 10, ip="102.89.7.7")
    usual = h.session("2025-02-02", 10, ip="5.42.1.1")
    d = run(h)
    assert UNFAMILIAR_IP in signals(d, new[1])
    assert UNFAMILIAR_IP not in signals(d, usual[1])


# == off hours =============================================================================
def test_off_hours_outside_the_accounts_habitual_hours() -> None:
    h = History()
    h.habits(sessions=12, riyadh_hour=10)
    late = h.session("2025-02-01", 3)
    afternoon = h.session("2025-02-02", 17)
    usual = h.session("2025-02-03", 12)  # within two hours of the habitual 10:00
    d = run(h)
    assert OFF_HOURS in signals(d, late[0])
    assert OFF_HOURS in signals(d, afternoon[0])
    assert OFF_HOURS not in signals(d, usual[0])


def test_off_hours_at_night_only_when_the_account_has_little_history() -> None:
    h = History()
    h.session("2025-01-02", 10)
    night = h.session("2025-01-03", 2, account=OWNER)
    day = h.session("2025-01-04", 15)
    d = run(h)
    assert OFF_HOURS in signals(d, night[0])
    assert OFF_HOURS not in signals(d, day[0])  # not night, and too little history to say


def test_no_off_hours_for_an_account_that_works_at_night() -> None:
    h = History()
    h.habits(riyadh_hour=2)
    night = h.session("2025-02-01", 2)
    assert OFF_HOURS not in signals(run(h), night[0])


# == sensitive burst =======================================================================
def test_burst_of_sensitive_services_in_one_session_flags_the_whole_session() -> None:
    h = History()
    at = utc("2025-02-01", 10)
    login = h.request("account.login", at, session="s9", establishment=None)
    one = h.request("absence.report", at, session="s9")
    two = h.request("permit.final_exit", at, session="s9")
    d = run(h)
    for request_id in (login, one, two):
        assert SENSITIVE_BURST in signals(d, request_id)


def test_one_sensitive_request_is_no_burst() -> None:
    h = History()
    at = utc("2025-02-01", 10)
    h.request("account.login", at, session="s9", establishment=None)
    one = h.request("absence.report", at, session="s9")
    h.request("worker.profession_change", at, session="s9")
    assert SENSITIVE_BURST not in signals(run(h), one)


def test_transfers_out_are_sensitive_transfers_in_are_not() -> None:
    h = History()
    at = utc("2025-02-01", 10)
    out = {"from_establishment_id": EST, "to_establishment_id": RECEIVER,
           "basis": "employer_release", "employer_months_late": 0}
    taken = {**out, "basis": "absence_report"}
    h.request("worker.service_transfer", at, event_type="worker.service_transferred",
              payload=out, establishment=RECEIVER)
    h.request("worker.service_transfer", at, event_type="worker.service_transferred",
              payload=taken, establishment=RECEIVER)
    h.request("worker.service_transfer", at, event_type="request.rejected",
              payload={"rule": "NITAQAT_BAND_TOO_LOW", "message": "x",
                       "service": "worker.service_transfer",
                       "request_payload": {"to_establishment_id": RECEIVER}})
    released, received, attempted = h.records
    assert transfer_out(released) and sensitive(released)
    assert not transfer_out(received) and not sensitive(received)
    assert transfer_out(attempted) and sensitive(attempted)  # a refused release attempt
    h.request("worker.service_transfer", at, event_type="worker.service_transferred",
              payload=out, establishment=RECEIVER, session="s2")
    h.request("worker.service_transfer", at, event_type="worker.service_transferred",
              payload=taken, establishment=RECEIVER, session="s2")
    d = run(h)
    assert SENSITIVE_BURST in signals(d, "r1")  # a release and a refused release
    assert SENSITIVE_BURST not in signals(d, "r4")  # a release and a transfer in


def test_password_and_email_changes_are_not_counted_in_the_burst() -> None:
    h = History()
    at = utc("2025-02-01", 10)
    h.request("account.password_changed", at, establishment=None,
              payload={"new_credential_id": "c2"})
    h.request("account.email_changed", at, establishment=None, payload={"email": "a@b.sa"})
    assert SENSITIVE_BURST not in signals(run(h), "r2")


# == activity after a credential change ===================================================
def test_activity_after_a_password_change_from_a_new_device() -> None:
    h = History()
    h.habits(device="d1")
    at = utc("2025-02-01", 10)
    h.request("account.password_changed", at, session="t", device="dx", establishment=None,
              payload={"new_credential_id": "c2"})
    soon = h.request("worker.profession_change", utc("2025-02-01", 11), session="t",
                     device="dx")
    days_later = h.request("worker.profession_change", utc("2025-02-04", 10), session="t2",
                           device="dx")
    d = run(h)
    assert AFTER_CREDENTIAL_CHANGE in signals(d, soon)
    assert AFTER_CREDENTIAL_CHANGE not in signals(d, days_later)


def test_no_signal_after_a_change_from_the_usual_device() -> None:
    h = History()
    h.habits(device="d1")
    at = utc("2025-02-01", 10)
    h.request("account.email_changed", at, session="u", establishment=None,
              payload={"email": "new@example.sa"})
    soon = h.request("worker.profession_change", at, session="u")
    assert AFTER_CREDENTIAL_CHANGE not in signals(run(h), soon)


# == failed logins, then a success =========================================================
def test_failed_logins_followed_by_a_success() -> None:
    h = History()
    failed = h.request("account.login_failed", utc("2025-02-01", 10, 0), session="f",
                       establishment=None, payload={"reason": "bad_password"})
    login = h.request("account.login", utc("2025-02-01", 10, 2), session="f",
                      establishment=None)
    d = run(h)
    assert FAILED_THEN_SUCCESS in signals(d, login)
    assert FAILED_THEN_SUCCESS in signals(d, failed)  # the session's, earlier ones too


def test_a_login_alone_or_long_after_a_failure_is_not_flagged() -> None:
    h = History()
    h.request("account.login_failed", utc("2025-02-01", 8), session="f", establishment=None,
              payload={"reason": "bad_password"})
    late = h.request("account.login", utc("2025-02-01", 11), session="g", establishment=None)
    alone = h.request("account.login", utc("2025-02-02", 10), session="h", establishment=None)
    d = run(h)
    assert FAILED_THEN_SUCCESS not in signals(d, late)
    assert FAILED_THEN_SUCCESS not in signals(d, alone)


# == one ip, many unrelated accounts =======================================================
def test_one_ip_used_by_many_unrelated_accounts() -> None:
    h = History()
    at = utc("2025-02-01", 10)
    ids = [h.request("account.login", at, account=f"100000000{n}", session=f"s{n}",
                     ip="45.141.1.1", establishment=None) for n in range(3)]
    d = run(h)
    assert SHARED_IP not in signals(d, ids[1])
    assert SHARED_IP in signals(d, ids[2])


def test_an_owner_and_its_delegates_on_one_ip_are_related() -> None:
    h = History()
    at = utc("2025-02-01", 10)
    h.request("account.login", at, account=OWNER, session="a", ip="5.1.1.1",
              establishment=None)
    ids = [h.request("worker.profession_change", at, account=f"200000000{n}",
                     role="delegate", on_behalf_of=OWNER, session=f"d{n}", ip="5.1.1.1")
           for n in range(3)]
    assert SHARED_IP not in signals(run(h), ids[-1])


def test_one_device_used_by_unrelated_accounts() -> None:
    """The thief's phone, then the accomplice's account on it."""
    h = History()
    at = utc("2025-02-01", 3)
    victim = h.request("account.login", at, account=OWNER, session="a", device="phone",
                       establishment=None)
    accomplice = h.request("account.login", at, account=OTHER, session="b", device="phone",
                           establishment=None)
    d = run(h)
    assert SHARED_DEVICE not in signals(d, victim)
    assert SHARED_DEVICE in signals(d, accomplice)


def test_a_delegate_on_its_owners_device_shares_nothing() -> None:
    h = History()
    at = utc("2025-02-01", 10)
    h.request("account.login", at, account=OWNER, session="a", device="pc",
              establishment=None)
    delegate = h.request("worker.profession_change", at, account="2000000001",
                         role="delegate", on_behalf_of=OWNER, session="b", device="pc")
    assert SHARED_DEVICE not in signals(run(h), delegate)


def test_client_groups_merge_related_accounts() -> None:
    ip = ClientState("5.1.1.1")
    ip.add("agent", "owner-1", 32)
    ip.add("agent", "owner-2", 32)
    ip.add("owner-3", None, 32)
    assert ip.groups == [["agent", "owner-1", "owner-2"], ["owner-3"]]
    assert ClientState.from_row(ip.to_row("ip"), "ip") == ip


# == a delegate outside its grant ==========================================================
@pytest.mark.parametrize("rule, fires", [("AUTH_DELEGATE_SERVICE", True),
                                         ("AUTH_DELEGATE_NO_GRANT", True),
                                         ("AUTH_DELEGATE_EXPIRED", True),
                                         ("ABSENCE_DOCUMENTS", False)])
def test_delegate_refused_outside_its_grant(rule: str, fires: bool) -> None:
    h = History()
    r = h.request("absence.report", utc("2025-02-01", 10), account="2000000001",
                  role="delegate", on_behalf_of=OWNER, event_type="request.rejected",
                  payload={"rule": rule, "message": "x", "service": "absence.report",
                           "request_payload": {"worker_id": "2000000009"}})
    assert (DELEGATE_OUT_OF_GRANT in signals(run(h), r)) is fires


# == scoring, alerts, learning =============================================================
def thief_night(h: History, session: str = "thief") -> list[str]:
    """A login and two absence reports at 03:00 Riyadh from a phone the owner never used."""
    at = utc("2025-02-10", 3)
    context = {"session": session, "device": "dev-thief", "ip": "185.220.1.1"}
    return [h.request("account.login", at, establishment=None, **context),
            h.request("absence.report", at, **context),
            h.request("absence.report", at, **context)]


def test_alerts_only_at_the_threshold_which_is_a_setting(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    h = History()
    h.habits()
    thief = thief_night(h)
    h.session("2025-02-10", 10)  # the owner, as usual
    d = run(h)
    assert d.alerted_requests() == set(thief)
    assert all(a["score"] >= d.settings.threshold for a in d.alerts)
    monkeypatch.setenv("SIJIL_FRAUD_THRESHOLD", "5")
    assert run(h, FraudSettings()).alerts == []


def test_the_login_before_the_burst_is_alerted_when_the_burst_comes() -> None:
    """By day, a new device and ip alone (0.55) stay below the threshold; the second
    absence report makes the session a burst, and the login is alerted then."""
    h = History()
    h.habits()
    at = utc("2025-02-10", 11)
    context = {"session": "day-thief", "device": "dev-thief", "ip": "185.220.1.1"}
    login = h.request("account.login", at, establishment=None, **context)
    first = h.request("absence.report", at, **context)
    second = h.request("absence.report", at, **context)
    d = Detector()
    seen = {r["request"]["request_id"]: d.feed(r) for r in h.records}
    assert not seen[login].alerts and not seen[first].alerts  # type: ignore[union-attr]
    burst = seen[second]
    assert burst is not None
    assert [a["request_id"] for a in burst.alerts] == [login, first, second]
    assert d.alerted_requests() == {login, first, second}


def test_an_alerted_session_teaches_nothing() -> None:
    h = History()
    h.habits()
    thief_night(h, "t1")
    again = h.request("account.login", utc("2025-02-11", 10), session="t2",
                      device="dev-thief", ip="185.220.1.1", establishment=None)
    assert UNFAMILIAR_DEVICE in signals(run(h), again)


def test_a_thiefs_second_sitting_is_as_unfamiliar_and_alerts_the_first() -> None:
    """By day: a first sitting with one blow (a new device and ip: 0.60) passes; the
    second, 40 minutes later, bursts; the first is then alerted as from a device that
    raised an alert."""
    h = History()
    h.habits()
    context = {"device": "dev-thief", "ip": "185.220.1.1"}
    first = [h.request("account.login", utc("2025-02-10", 11), session="t1",
                       establishment=None, **context),
             h.request("absence.report", utc("2025-02-10", 11, 1), session="t1", **context)]
    second = [h.request("account.login", utc("2025-02-10", 11, 40), session="t2",
                        establishment=None, **context),
              h.request("absence.report", utc("2025-02-10", 11, 41), session="t2", **context),
              h.request("permit.final_exit", utc("2025-02-10", 11, 42), session="t2",
                        **context)]
    later = h.session("2025-02-10", 14)  # the owner, as usual
    d = run(h)
    assert UNFAMILIAR_DEVICE in signals(d, second[0])
    assert d.alerted_requests() == set(first + second)
    assert ALERTED_DEVICE in signals(d, first[0])
    assert not set(later) & d.alerted_requests()


def test_staff_and_integrations_are_not_scored() -> None:
    h = History()
    h.request("absence.report", utc("2025-02-10", 3), account="staff:clerk-011",
              role="office_clerk", channel="office")
    h.request("integration.passports_sync", utc("2025-02-10", 3), account="sys:passports",
              role="system", channel="integration")
    d = run(h)
    assert d.all_scored() == [] and d.alerts == []


def test_state_survives_its_table_rows() -> None:
    account = AccountState("1", sessions=2, devices=["d"], ips=["i"], session_id="s",
                           pending={"d": {"first_at": "2025-01-01T00:00:00.000000Z",
                                          "sessions": 1, "ips": ["i"], "hours": [10],
                                          "alerted": False, "entries": []}})
    assert AccountState.from_row(account.to_row()) == account
    session = SessionState("s", "1", "2025-01-01T00:00:00.000000Z", 2, 1, True,
                           ["sensitive_burst"], [{"request_id": "r1", "alerted": True}])
    assert SessionState.from_row(session.to_row()) == session


# == the fold ==============================================================================
def mixed_history() -> History:
    h = History()
    h.habits()
    h.habits(account=OTHER, device="d9", ip="5.9.9.9", riyadh_hour=9)
    thief_night(h)
    h.session("2025-02-10", 10)
    h.request("account.login_failed", utc("2025-02-11", 2), session="x", device="dev-x",
              ip="45.1.1.1", establishment=None, payload={"reason": "bad_password"})
    h.request("account.login", utc("2025-02-11", 2), session="x", device="dev-x",
              ip="45.1.1.1", establishment=None, events=2)
    return h


def test_the_fold_gives_the_detectors_alerts_once_even_when_records_come_twice() -> None:
    h = mixed_history()
    expected = run(h).alerts
    rows = MemoryRows()
    fold_all(fraud_alerts.PROJECTIONS, rows, h.records)
    assert rows.history["fraud_alerts"] == expected
    fold_all(fraud_alerts.PROJECTIONS, rows, h.records)  # redelivered: nothing new
    assert rows.history["fraud_alerts"] == expected


def _deliveries(records: list[Record]) -> Iterator[Delivery]:
    for n, r in enumerate(records):
        yield Delivery("sijil.events.v1", 0, n, None, r)


def test_the_projection_runner_writes_the_alerts_and_state_tables(tmp_path: Path) -> None:
    h = mixed_history()
    expected = run(h).alerts
    engine = create_engine(f"sqlite:///{tmp_path}/p.sqlite")
    handler = ProjectionHandler(engine, fraud_alerts.PROJECTIONS)
    deliveries = list(_deliveries(h.records))
    for start in range(0, len(deliveries), 7):  # batches that cut sessions apart
        with engine.begin() as conn:
            handler.handle(conn, deliveries[start:start + 7])
        handler.committed()
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(fraud_alerts.ALERTS).order_by(fraud_alerts.ALERTS.c.position)).mappings()]
        accounts = conn.execute(select(fraud_alerts.ACCOUNTS)).all()
    assert [r["alert_id"] for r in rows] == sorted((a["alert_id"] for a in expected),
                                                   key=lambda i: int(i.split(":r")[1]))
    assert {r["request_id"]: orjson.loads(r["signals"]) for r in rows} == \
        {a["request_id"]: orjson.loads(a["signals"]) for a in expected}
    assert {a.account_id for a in accounts} == {OWNER, OTHER}


@given(moment=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2100, 1, 1)),
       minutes=st.integers(min_value=0, max_value=60 * 24 * 30))
def test_hours_before_is_the_contracts_timestamp_that_much_earlier(
        moment: datetime, minutes: int) -> None:
    # The rules compare these strings with the contract's: the text must be the same as
    # formatting the earlier moment in the contract's format would give.
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    hours = minutes / 60
    assert hours_before(moment.strftime(fmt), hours) == (
        moment - timedelta(hours=hours)).strftime(fmt)
