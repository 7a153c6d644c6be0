"""The rules the domain enforces (shared/DESIGN.md, "Rules the domain enforces" and
"Delegates"): every rule code of domain/refusals.py has a refused case naming it and an
accepted case showing the same request passing once the condition holds.

Each test runs on its own SQLite file. `refused(outcome, CODE)` also checks that the
refusal recorded exactly one `request.rejected` event carrying CODE and nothing else.
The meta-test at the end fails when a code in RULE_CODES is not mentioned here.
"""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest

from domain.account import Unattributed
from domain.eligibility import RED_WITHDRAWN
from domain.identifiers import (
    account_stream,
    establishment_stream,
    refusal_stream,
    worker_stream,
)
from domain.refusals import RULE_CODES
from tests.builders import (
    Scenario,
    accepted,
    check,
    event_types,
    new_ledger,
    refused,
)

EST, OTHER, THIRD = "1-100", "1-200", "1-300"
S1 = "1000000901"  # a Saudi of EST
W = "2000000901"   # an expatriate of EST, arrived on the day EST opened
W2 = "2000000902"
START = "2025-01-01"


@pytest.fixture
def s(tmp_path: Path) -> Scenario:
    return Scenario(new_ledger(tmp_path), START)


def world(s: Scenario, *, other: bool = False, owner_counts: bool = True) -> Scenario:
    """EST (owner "owner") with a Saudi S1 and an expatriate W; OTHER (owner "owner2")
    if asked. Both are small, so green while a Saudi (or the owner) counts."""
    accepted(s.open_file(EST, owner_counts_as_saudi=owner_counts))
    accepted(s.hire_saudi(EST, S1))
    accepted(s.hire_expat(EST, W))
    if other:
        accepted(s.open_file(OTHER, owner="owner2"))
    return s


def event_of(outcome, event_type: str):  # type: ignore[no-untyped-def]
    return next(e for e in outcome.events if e.event_type == event_type)


# == Authorization ========================================================================
def test_unknown_account_refused_until_registered(s: Scenario) -> None:
    refused(s.open_file(EST, owner="late", register=False), "AUTH_UNKNOWN_ACCOUNT")
    accepted(s.owner("late"))
    accepted(s.open_file(EST, owner="late"))


def test_role_must_match_the_account(s: Scenario) -> None:
    world(s)
    refused(s.hire_saudi(EST, role="delegate"), "AUTH_ROLE_MISMATCH")
    accepted(s.hire_saudi(EST, role="owner"))
    refused(s.passports(W, "iqama_renewed", iqama_expiry="2028-01-01", role="owner"),
            "AUTH_ROLE_MISMATCH")
    accepted(s.passports(W, "iqama_renewed", iqama_expiry="2028-01-01"))
    refused(s.register("clerk1", "office_clerk"), "AUTH_ROLE_MISMATCH")  # provisioned only
    refused(s.hire_saudi(EST, by="staff:clerk", role="owner"), "AUTH_ROLE_MISMATCH")


def test_stale_credential_after_password_change(s: Scenario) -> None:
    world(s)
    old = s.credentials.get("owner", "c-owner")
    accepted(s.hire_saudi(EST, credential=old))
    accepted(s.change_password("owner", "c-owner-2"))
    refused(s.hire_saudi(EST, credential=old), "AUTH_STALE_CREDENTIAL")
    # The old credential cannot take the account back either.
    refused(s.change_password("owner", "c-thief", credential=old), "AUTH_STALE_CREDENTIAL")
    accepted(s.hire_saudi(EST))  # the current credential
    # A failed login is recorded whatever the credential.
    accepted(s.submit("account.login_failed", {"reason": "bad_password"}, by="owner",
                      credential=old))


def test_owner_acts_only_for_own_establishments(s: Scenario) -> None:
    world(s, other=True)
    refused(s.hire_saudi(EST, by="owner2"), "AUTH_NOT_OWNER")
    accepted(s.hire_saudi(OTHER, by="owner2"))
    accepted(s.hire_saudi(EST, by="owner"))


def test_owner_only_services(s: Scenario) -> None:
    world(s)
    for d in ("d1", "d2"):
        accepted(s.delegate(d))
    accepted(s.grant(EST, "d1", ["account.delegate_registered", "worker.join"]))
    accepted(s.confirm(EST, "d1"))
    refused(s.grant(EST, "d2", ["worker.join"], by="d1"), "AUTH_OWNER_ONLY")
    refused(s.grant(EST, "d2", ["worker.join"], by="staff:clerk"), "AUTH_OWNER_ONLY")
    refused(s.open_file(OTHER, by="d1"), "AUTH_OWNER_ONLY")
    accepted(s.grant(EST, "d2", ["worker.join"]))  # by the owner


class TestDelegates:
    """The owner grants chosen services for an establishment, optionally dated; the
    delegate confirms; it acts only within the grant until revoked or expired."""

    def test_grant_lifecycle(self, s: Scenario) -> None:
        world(s, other=True)
        accepted(s.delegate("d1"))
        refused(s.hire_saudi(EST, by="d1"), "AUTH_DELEGATE_NO_GRANT")
        accepted(s.grant(EST, "d1", ["worker.join", "permit.issue"]))
        refused(s.hire_saudi(EST, by="d1"), "AUTH_DELEGATE_UNCONFIRMED")
        accepted(s.confirm(EST, "d1"))
        accepted(s.hire_saudi(EST, by="d1"))
        accepted(s.issue_permit(EST, W, by="d1"))
        refused(s.report_absence(EST, W, by="d1"), "AUTH_DELEGATE_SERVICE")
        refused(s.hire_saudi(OTHER, by="d1"), "AUTH_DELEGATE_NO_GRANT")  # another owner's
        accepted(s.revoke(EST, "d1"))
        refused(s.hire_saudi(EST, by="d1"), "AUTH_DELEGATE_REVOKED")
        refused(s.confirm(EST, "d1"), "AUTH_DELEGATE_NO_GRANT")  # nothing left to confirm
        # A new grant starts unconfirmed again.
        accepted(s.grant(EST, "d1", ["worker.join"]))
        refused(s.hire_saudi(EST, by="d1"), "AUTH_DELEGATE_UNCONFIRMED")

    @pytest.mark.parametrize("day, rule", [
        ("2025-01-09", "AUTH_DELEGATE_NOT_YET_VALID"),
        ("2025-01-10", None),
        ("2025-01-20", None),
        ("2025-01-21", "AUTH_DELEGATE_EXPIRED"),
    ])
    def test_dated_grant(self, s: Scenario, day: str, rule: str | None) -> None:
        world(s)
        accepted(s.delegate("d1"))
        accepted(s.grant(EST, "d1", ["worker.join"], valid_from="2025-01-10",
                         valid_until="2025-01-20"))
        accepted(s.confirm(EST, "d1"))
        check(s.at(day).hire_saudi(EST, by="d1"), rule)

    def test_revoke_needs_a_live_grant(self, s: Scenario) -> None:
        world(s)
        accepted(s.delegate("d1"))
        refused(s.revoke(EST, "d1"), "AUTH_DELEGATE_NO_GRANT")
        accepted(s.grant(EST, "d1", ["worker.join"]))
        accepted(s.revoke(EST, "d1"))


def test_agent_acts_for_the_owner_it_represents_only(s: Scenario) -> None:
    world(s, other=True)
    accepted(s.agent("a1"))
    refused(s.hire_saudi(EST, by="a1"), "AUTH_AGENT_NOT_APPOINTED")
    accepted(s.appoint_agent("a1", by="owner"))
    accepted(s.hire_saudi(EST, by="a1"))
    refused(s.hire_saudi(OTHER, by="a1"), "AUTH_AGENT_NOT_APPOINTED")  # owner2's file
    refused(s.open_file(THIRD, by="a1"), "AUTH_OWNER_ONLY")


@pytest.mark.parametrize("actor, call, rule", [
    ("sys:passports", "passports", None),
    ("sys:nic", "passports", "AUTH_INTEGRATION_SERVICE"),
    ("sys:nic", "imprison", None),
    ("sys:passports", "imprison", "AUTH_INTEGRATION_SERVICE"),
    ("sys:commerce", "activity", None),
    ("sys:passports", "activity", "AUTH_INTEGRATION_SERVICE"),
    ("sys:commerce", "hire", "AUTH_INTEGRATION_SERVICE"),
    ("sys:unknown", "passports", "AUTH_INTEGRATION_SERVICE"),
])
def test_integrations_act_only_for_their_own_services(s: Scenario, actor: str, call: str,
                                                      rule: str | None) -> None:
    world(s)
    calls = {
        "passports": lambda: s.passports(W, "iqama_renewed", iqama_expiry="2028-01-01",
                                         by=actor),
        "imprison": lambda: s.imprison(W, by=actor),
        "activity": lambda: s.change_activity(EST, "retail_trade", by=actor),
        "hire": lambda: s.hire_saudi(EST, by=actor),
    }
    check(calls[call](), rule)


def test_staff_roles_and_channel(s: Scenario) -> None:
    world(s)
    refused(s.hire_saudi(EST, by="staff:auditor"), "AUTH_STAFF_ROLE")
    refused(s.hire_saudi(EST, by="staff:clerk", channel="portal"), "AUTH_CLERK_CHANNEL")
    accepted(s.hire_saudi(EST, by="staff:clerk", channel="office"))


# == Accounts ==============================================================================
def test_account_registered_once(s: Scenario) -> None:
    accepted(s.owner("o1"))
    refused(s.owner("o1"), "ACCOUNT_EXISTS")
    refused(s.register("o1", "delegate"), "ACCOUNT_EXISTS")


def test_grant_names_a_registered_delegate(s: Scenario) -> None:
    world(s)
    accepted(s.agent("a1"))
    refused(s.grant(EST, "a1", ["worker.join"]), "ACCOUNT_NOT_DELEGATE")
    refused(s.grant(EST, "nobody", ["worker.join"]), "ACCOUNT_NOT_DELEGATE")
    accepted(s.delegate("d1"))
    accepted(s.grant(EST, "d1", ["worker.join"]))


def test_agent_appointment_names_a_registered_agent(s: Scenario) -> None:
    world(s)
    accepted(s.delegate("d1"))
    refused(s.appoint_agent("d1"), "ACCOUNT_NOT_AGENT")
    accepted(s.agent("a1"))
    accepted(s.appoint_agent("a1"))


# == The establishment's file ==============================================================
def test_unknown_establishment(s: Scenario) -> None:
    world(s)
    refused(s.hire_saudi("1-999"), "ESTABLISHMENT_UNKNOWN")
    refused(s.transfer(EST, W, "1-999"), "ESTABLISHMENT_UNKNOWN")  # unknown receiver
    accepted(s.open_file("1-999"))
    accepted(s.hire_saudi("1-999"))


def test_file_number_opened_once(s: Scenario) -> None:
    accepted(s.open_file(EST))
    refused(s.open_file(EST), "ESTABLISHMENT_EXISTS")
    refused(s.open_file(EST, owner="owner2"), "ESTABLISHMENT_EXISTS")
    accepted(s.open_file(OTHER))


def test_activity_must_be_in_the_table(s: Scenario) -> None:
    refused(s.open_file(EST, activity="space_mining"), "ACTIVITY_UNKNOWN")
    accepted(s.open_file(EST, activity="construction"))
    refused(s.change_activity(EST, "space_mining"), "ACTIVITY_UNKNOWN")
    accepted(s.change_activity(EST, "retail_trade"))


def test_activity_change_must_change(s: Scenario) -> None:
    world(s)
    refused(s.change_activity(EST, "construction"), "ACTIVITY_UNCHANGED")
    accepted(s.change_activity(EST, "hospitality"))
    refused(s.change_activity(EST, "hospitality", by="sys:commerce"), "ACTIVITY_UNCHANGED")
    accepted(s.change_activity(EST, "construction", by="sys:commerce"))


def test_branches(s: Scenario) -> None:
    world(s)
    refused(s.branch_transfer(EST, W, "b1"), "BRANCH_UNKNOWN")
    refused(s.hire_saudi(EST, branch_id="b1"), "BRANCH_UNKNOWN")
    accepted(s.add_branch(EST, "b1"))
    refused(s.add_branch(EST, "b1"), "BRANCH_EXISTS")
    accepted(s.add_branch(EST, "b2"))
    accepted(s.branch_transfer(EST, W, "b1"))
    accepted(s.hire_saudi(EST, branch_id="b1"))


# == Workers ===============================================================================
def test_worker_must_be_known(s: Scenario) -> None:
    world(s)
    refused(s.issue_permit(EST, W2), "WORKER_UNKNOWN")
    refused(s.cancel_absence(EST, W2), "WORKER_UNKNOWN")
    refused(s.passports(W2, "returned"), "WORKER_UNKNOWN")
    accepted(s.hire_expat(EST, W2))
    accepted(s.issue_permit(EST, W2))


def test_worker_employed_once(s: Scenario) -> None:
    world(s, other=True)
    refused(s.hire_expat(OTHER, W), "WORKER_EMPLOYED")
    refused(s.hire_expat(EST, W), "WORKER_EMPLOYED")
    accepted(s.passports(W, "final_exit_confirmed"))
    accepted(s.hire_expat(OTHER, W))  # back on a new visa


def test_worker_must_be_the_requesters_employee(s: Scenario) -> None:
    world(s, other=True)
    refused(s.issue_permit(OTHER, W), "WORKER_NOT_EMPLOYEE")
    refused(s.change_profession(OTHER, W), "WORKER_NOT_EMPLOYEE")
    accepted(s.open_file(THIRD, owner="owner3"))
    refused(s.transfer(THIRD, W, OTHER), "WORKER_NOT_EMPLOYEE")  # neither party
    accepted(s.issue_permit(EST, W))


def test_permits_and_absence_are_for_expatriates(s: Scenario) -> None:
    world(s)
    gcc = "2000000950"  # a Kuwaiti resident counts as Saudi in Nitaqat
    accepted(s.hire_expat(EST, gcc, nationality="KWT", saudi_category="gcc"))
    refused(s.issue_permit(EST, S1), "WORKER_NOT_EXPATRIATE")
    refused(s.issue_permit(EST, gcc), "WORKER_NOT_EXPATRIATE")
    refused(s.report_absence(EST, S1), "WORKER_NOT_EXPATRIATE")
    accepted(s.issue_permit(EST, W))


def test_worker_documents(s: Scenario) -> None:
    accepted(s.open_file(EST))
    refused(s.hire_expat(EST, W, arrival_date=None), "WORKER_DOCUMENTS")
    refused(s.hire_saudi(EST, "1000000950", saudi_category=None, nationality="IND"),
            "WORKER_DOCUMENTS")
    refused(s.hire_saudi(EST, "1000000950", saudi_category="gcc"), "WORKER_DOCUMENTS")
    accepted(s.hire_expat(EST, W))
    accepted(s.hire_saudi(EST, "1000000950"))
    refused(s.passports(W, "iqama_renewed"), "WORKER_DOCUMENTS")
    accepted(s.passports(W, "iqama_renewed", iqama_expiry="2028-01-01"))


def test_open_absence_report_stops_the_filers_services(s: Scenario) -> None:
    world(s)
    accepted(s.issue_permit(EST, W, months=3))  # until 2025-03-31: renewal is open
    accepted(s.report_absence(EST, W))
    s.at("2025-01-10")
    refused(s.change_profession(EST, W), "WORKER_ABSENCE_OPEN")
    refused(s.final_exit(EST, W), "WORKER_ABSENCE_OPEN")
    refused(s.dependents(EST, W), "WORKER_ABSENCE_OPEN")
    refused(s.renew_permit(EST, W), "WORKER_ABSENCE_OPEN")
    accepted(s.cancel_absence(EST, W))
    accepted(s.change_profession(EST, W))
    accepted(s.renew_permit(EST, W))


def test_second_absence_report_names_absence_open(s: Scenario) -> None:
    """Regression: ABSENCE_OPEN was unreachable behind active_employee()."""
    world(s)
    accepted(s.issue_permit(EST, W, months=12))
    accepted(s.report_absence(EST, W))
    refused(s.report_absence(EST, W), "ABSENCE_OPEN")


def test_imprisoned_worker(s: Scenario) -> None:
    world(s, other=True)
    accepted(s.imprison(W))
    refused(s.issue_permit(EST, W), "WORKER_IMPRISONED")
    refused(s.transfer(EST, W, OTHER), "WORKER_IMPRISONED")
    accepted(s.imprison(W, imprisoned=False))
    accepted(s.issue_permit(EST, W))


def test_worker_who_left_the_kingdom(s: Scenario) -> None:
    world(s, other=True)
    before = s.establishment(EST).expatriates
    accepted(s.passports(W, "exit_without_return"))
    assert s.establishment(EST).expatriates == before - 1
    refused(s.passports(W, "final_exit_confirmed"), "WORKER_LEFT_KINGDOM")
    refused(s.transfer(OTHER, W, OTHER), "WORKER_LEFT_KINGDOM")
    # No permit for a worker who left (DESIGN.md): refused, under the employment rule.
    assert not s.issue_permit(EST, W).accepted


def test_pending_final_exit(s: Scenario) -> None:
    world(s, other=True)
    accepted(s.issue_permit(EST, W, months=3))
    accepted(s.change_profession(EST, W))
    accepted(s.final_exit(EST, W))
    refused(s.change_profession(EST, W), "WORKER_EXIT_PENDING")
    refused(s.renew_permit(EST, W), "WORKER_EXIT_PENDING")
    refused(s.transfer(OTHER, W, OTHER), "WORKER_EXIT_PENDING")
    expats = s.establishment(EST).expatriates
    accepted(s.passports(W, "final_exit_confirmed"))  # employment ends on departure
    assert s.establishment(EST).expatriates == expats - 1
    assert s.worker(W).employer is None


def test_expired_iqama(s: Scenario) -> None:
    world(s)
    accepted(s.hire_expat(EST, W2, iqama_days=30))
    accepted(s.issue_permit(EST, W2, months=3))
    s.at("2025-01-31")  # the iqama's last day
    accepted(s.change_profession(EST, W2))
    s.at("2025-02-01")
    refused(s.change_profession(EST, W2), "WORKER_IQAMA_EXPIRED")
    refused(s.renew_permit(EST, W2, months=3), "WORKER_IQAMA_EXPIRED")
    accepted(s.passports(W2, "iqama_renewed", iqama_expiry="2026-02-01"))
    accepted(s.change_profession(EST, W2))
    accepted(s.renew_permit(EST, W2, months=3))


@pytest.mark.parametrize("saudis, expats, band, rule", [
    (3, 6, "platinum", None),
    (2, 7, "high_green", None),
    (1, 5, "medium_green", "WORKER_IQAMA_EXPIRED"),
])
def test_platinum_and_high_green_keep_services_despite_expired_iqama(
        s: Scenario, saudis: int, expats: int, band: str, rule: str | None) -> None:
    accepted(s.open_file(EST, owner_counts_as_saudi=False))
    s.staff(EST, saudis=saudis, expats=expats)
    accepted(s.hire_expat(EST, W2, iqama_days=30))
    accepted(s.issue_permit(EST, W2, months=3))
    s.at("2025-02-01")
    assert s.band(EST) == band
    check(s.change_profession(EST, W2), rule)
    check(s.renew_permit(EST, W2, months=3), rule)


# == Work permits ==========================================================================
@pytest.mark.parametrize("months, rule", [
    (3, None), (6, None), (9, None), (12, None),
    (1, "PERMIT_PERIOD"), (5, "PERMIT_PERIOD"), (24, "PERMIT_PERIOD"),
])
def test_permit_periods(s: Scenario, months: int, rule: str | None) -> None:
    world(s)
    outcome = check(s.issue_permit(EST, W, months=months), rule)
    if rule is None:
        assert event_of(outcome, "worker.permit_issued").payload["months"] == months


@pytest.mark.parametrize("months, rule", [(1, None), (3, None), (4, "PERMIT_PERIOD")])
def test_temporary_permit_at_most_three_months(s: Scenario, months: int,
                                               rule: str | None) -> None:
    world(s)
    check(s.temporary_permit(EST, W, months=months), rule)


@pytest.mark.parametrize("day, rule", [
    ("2025-01-01", None),                   # day 0
    ("2025-04-01", None),                   # day 90
    ("2025-04-02", "PERMIT_ISSUE_WINDOW"),  # day 91
])
def test_permit_issued_within_90_days_of_arrival(s: Scenario, day: str,
                                                 rule: str | None) -> None:
    world(s)  # W arrived 2025-01-01
    check(s.at(day).issue_permit(EST, W), rule)


def test_issue_window_counts_from_arrival_not_hire(s: Scenario) -> None:
    world(s)
    accepted(s.at("2025-02-01").hire_expat(EST, W2, arrival="2024-11-01"))  # day 92
    refused(s.issue_permit(EST, W2), "PERMIT_ISSUE_WINDOW")


def test_one_valid_permit_at_a_time(s: Scenario) -> None:
    world(s)
    accepted(s.issue_permit(EST, W, months=3))
    refused(s.issue_permit(EST, W, months=3), "PERMIT_VALID")
    refused(s.temporary_permit(EST, W), "PERMIT_VALID")


def test_renewal_needs_a_permit(s: Scenario) -> None:
    world(s)
    refused(s.renew_permit(EST, W), "PERMIT_NONE")
    accepted(s.issue_permit(EST, W, months=3))
    accepted(s.renew_permit(EST, W))


@pytest.mark.parametrize("day, days_left, rule", [
    ("2025-07-03", 181, "PERMIT_RENEWAL_NOT_OPEN"),
    ("2025-07-04", 180, None),
    ("2025-12-31", 0, None),
    ("2026-01-30", -30, None),
    ("2026-01-31", -31, "PERMIT_RENEWAL_LAPSED"),
])
def test_renewal_window(s: Scenario, day: str, days_left: int, rule: str | None) -> None:
    world(s)
    accepted(s.issue_permit(EST, W, months=12))  # valid until 2025-12-31
    s.at(day).pay_wages(EST, months=1)
    outcome = check(s.renew_permit(EST, W, months=6), rule)
    if rule is None:
        renewed = event_of(outcome, "worker.permit_renewed").payload
        assert renewed["valid_from"] == max("2026-01-01", day)  # continues the old permit


@pytest.mark.parametrize("saudis, expats, levy", [
    (1, 1, 700),  # expatriates no more than Saudis
    (2, 1, 700),
    (1, 2, 800),  # more expatriates than Saudis
])
@pytest.mark.parametrize("months", [3, 12])
def test_permit_fee_recorded_on_the_event(s: Scenario, saudis: int, expats: int,
                                          levy: int, months: int) -> None:
    accepted(s.open_file(EST))
    s.staff(EST, saudis=saudis, expats=expats - 1)
    accepted(s.hire_expat(EST, W))
    issued = event_of(accepted(s.issue_permit(EST, W, months=months)),
                      "worker.permit_issued").payload
    assert issued["levy_sar_a_month"] == levy
    assert issued["fee_sar"] == 100 * months // 12 + levy * months


# == Absence reports =======================================================================
@pytest.mark.parametrize("permit_months, iqama_days, day, rule", [
    (3, 730, "2025-01-30", None),                  # permit: 60 days left
    (3, 730, "2025-01-31", "ABSENCE_DOCUMENTS"),   # permit: 59 days left
    (12, 89, "2025-01-30", None),                  # iqama: 60 days left
    (12, 89, "2025-01-31", "ABSENCE_DOCUMENTS"),   # iqama: 59 days left
    (0, 730, "2025-01-02", "ABSENCE_DOCUMENTS"),   # no permit at all
])
def test_absence_needs_60_days_of_permit_and_iqama(s: Scenario, permit_months: int,
                                                   iqama_days: int, day: str,
                                                   rule: str | None) -> None:
    world(s)
    accepted(s.hire_expat(EST, W2, iqama_days=iqama_days))
    if permit_months:
        accepted(s.issue_permit(EST, W2, months=permit_months))
    check(s.at(day).report_absence(EST, W2), rule)


def test_absence_cancel_needs_an_open_report(s: Scenario) -> None:
    world(s)
    accepted(s.issue_permit(EST, W, months=12))
    refused(s.cancel_absence(EST, W), "ABSENCE_NONE")
    accepted(s.report_absence(EST, W))
    accepted(s.cancel_absence(EST, W))
    refused(s.cancel_absence(EST, W), "ABSENCE_NONE")


def test_only_the_filer_cancels(s: Scenario) -> None:
    world(s, other=True)
    accepted(s.issue_permit(EST, W, months=12))
    accepted(s.report_absence(EST, W))
    refused(s.cancel_absence(OTHER, W, by="owner2"), "ABSENCE_NOT_FILER")
    accepted(s.cancel_absence(EST, W))


@pytest.mark.parametrize("day, rule", [
    ("2025-01-16", None),                     # 15 days after filing
    ("2025-01-17", "ABSENCE_CANCEL_WINDOW"),  # 16 days
])
def test_absence_cancel_window(s: Scenario, day: str, rule: str | None) -> None:
    world(s)
    accepted(s.issue_permit(EST, W, months=12))
    accepted(s.at("2025-01-01").report_absence(EST, W))
    check(s.at(day).cancel_absence(EST, W), rule)


def test_absence_report_detaches_the_worker(s: Scenario) -> None:
    world(s)
    accepted(s.issue_permit(EST, W, months=12))
    expats = s.establishment(EST).expatriates
    outcome = accepted(s.report_absence(EST, W))
    assert event_types(outcome)[:2] == ["worker.absence_reported",
                                        "establishment.worker_left"]
    assert s.establishment(EST).expatriates == expats - 1
    assert s.worker(W).absence_status(s.today, 60) == "discontinued"
    assert s.worker(W).absence_status(s.after(60).today, 60) == "absent"


@pytest.mark.parametrize("day, rule", [
    ("2025-03-01", None),                      # day 59: discontinued from work
    ("2025-03-02", "TRANSFER_WORKER_ABSENT"),  # day 60: absent
])
def test_absent_after_60_days_blocks_transfer(s: Scenario, day: str,
                                              rule: str | None) -> None:
    world(s, other=True)
    accepted(s.issue_permit(EST, W, months=12))
    accepted(s.report_absence(EST, W))
    s.at(day).pay_wages(OTHER, months=3)
    expats = s.establishment(EST).expatriates
    outcome = check(s.transfer(OTHER, W, OTHER, by="owner2"), rule)
    if rule is None:
        assert event_of(outcome, "worker.service_transferred").payload["basis"] == \
            "absence_report"
        left = event_of(outcome, "establishment.worker_left").payload
        assert left["counted"] is False  # already out of EST's counts since the report
        assert s.establishment(EST).expatriates == expats
        assert s.worker(W).employer == OTHER and s.worker(W).absence is None


def test_filer_cannot_transfer_a_worker_it_reported(s: Scenario) -> None:
    """Regression: the filer could release the worker (basis employer_release)."""
    world(s, other=True)
    accepted(s.issue_permit(EST, W, months=12))
    accepted(s.report_absence(EST, W))
    refused(s.transfer(EST, W, OTHER), "WORKER_ABSENCE_OPEN")


# == Service transfer ======================================================================
def test_transfer_to_the_current_employer(s: Scenario) -> None:
    world(s, other=True)
    refused(s.transfer(EST, W, EST), "TRANSFER_SAME_EMPLOYER")
    accepted(s.transfer(EST, W, OTHER))


def test_transfer_needs_the_workers_consent(s: Scenario) -> None:
    world(s, other=True)
    refused(s.transfer(EST, W, OTHER, consent=False), "TRANSFER_WORKER_CONSENT")
    accepted(s.transfer(EST, W, OTHER, consent=True))


@pytest.mark.parametrize("paid, rule", [
    (7, "TRANSFER_RECEIVER_COMPLIANCE"),  # 70% over Feb-Apr
    (8, None),                            # 80%
])
def test_receiver_wage_protection_compliance(s: Scenario, paid: int,
                                             rule: str | None) -> None:
    world(s, other=True)
    s.at("2025-05-10")
    s.pay_wages(EST, months=3)
    s.pay_wages(OTHER, months=3, total=10, paid=paid)
    check(s.transfer(EST, W, OTHER), rule)


def test_receiver_must_be_medium_green_or_better(s: Scenario) -> None:
    world(s)
    accepted(s.open_file(OTHER, owner="owner2", owner_counts_as_saudi=False))
    assert s.band(OTHER) == "red"
    refused(s.transfer(EST, W, OTHER), "NITAQAT_BAND_TOO_LOW")
    accepted(s.hire_saudi(OTHER, by="owner2"))
    assert s.band(OTHER) == "medium_green"
    accepted(s.transfer(EST, W, OTHER))


def test_low_green_receiver_is_too_low(s: Scenario) -> None:
    world(s)
    accepted(s.open_file(OTHER, owner="owner2", owner_counts_as_saudi=False))
    s.staff(OTHER, saudis=1, expats=7)  # 12.5% of 8
    assert s.band(OTHER) == "low_green"
    refused(s.transfer(EST, W, OTHER), "NITAQAT_BAND_TOO_LOW")
    refused(s.transfer(OTHER, W, OTHER), "NITAQAT_BAND_TOO_LOW")
    s.staff(OTHER, saudis=1)
    assert s.band(OTHER) in ("high_green", "platinum")
    accepted(s.transfer(EST, W, OTHER))


@pytest.mark.parametrize("day, notice, rule", [
    ("2025-12-31", "2025-09-01", "TRANSFER_FIRST_YEAR"),  # 364 days served
    ("2026-01-01", None, "TRANSFER_NOTICE"),
    ("2026-01-01", "2025-10-04", "TRANSFER_NOTICE"),      # 89 days' notice
    ("2026-01-01", "2025-10-03", None),                   # 365 days, 90 days' notice
])
def test_transfer_without_consent_after_first_year_and_notice(
        s: Scenario, day: str, notice: str | None, rule: str | None) -> None:
    world(s, other=True)  # W joined EST on 2025-01-01
    s.at(day)
    s.pay_wages(EST, months=1)
    s.pay_wages(OTHER, months=3)
    outcome = check(s.transfer(OTHER, W, OTHER, notice_given_on=notice), rule)
    if rule is None:
        assert event_of(outcome, "worker.service_transferred").payload["basis"] == \
            "notice_served"


@pytest.mark.parametrize("day, rule", [("2025-02-28", "TRANSFER_FIRST_YEAR"),
                                       ("2025-03-01", None)])
def test_transfer_without_consent_at_contract_end(s: Scenario, day: str,
                                                  rule: str | None) -> None:
    world(s, other=True)
    accepted(s.hire_expat(EST, W2, contract_end="2025-03-01"))
    s.at(day)
    s.pay_wages(EST, months=2)
    s.pay_wages(OTHER, months=2)
    outcome = check(s.transfer(OTHER, W2, OTHER), rule)
    if rule is None:
        assert event_of(outcome, "worker.service_transferred").payload["basis"] == \
            "contract_end"


def test_transfer_is_one_commit_on_the_worker_and_both_establishments(
        s: Scenario) -> None:
    world(s, other=True)
    commits: list[list[object]] = []
    real_commit = s.ledger.commit

    def spy(events, aggregates):  # type: ignore[no-untyped-def]
        commits.append(list(events))
        real_commit(events, aggregates)

    s.ledger.commit = spy  # type: ignore[method-assign]
    before = s.recorded()
    outcome = accepted(s.transfer(EST, W, OTHER))
    assert len(commits) == 1 and commits[0] == outcome.events
    streams = {e.originator_id for e in outcome.events}
    assert {worker_stream(W), establishment_stream(EST), establishment_stream(OTHER)} \
        <= streams
    assert s.recorded() == before + len(outcome.events)
    moved = event_of(outcome, "worker.service_transferred")
    left = event_of(outcome, "establishment.worker_left")  # the employer is notified
    joined = event_of(outcome, "establishment.worker_joined")
    assert moved.payload["from_establishment_id"] == EST
    assert moved.payload["to_establishment_id"] == OTHER
    assert left.originator_id == establishment_stream(EST)
    assert left.payload["to_establishment_id"] == OTHER
    assert joined.originator_id == establishment_stream(OTHER)
    assert joined.payload["from_establishment_id"] == EST
    assert s.worker(W).employer == OTHER
    assert s.establishment(EST).expatriates == 0
    assert s.establishment(OTHER).expatriates == 1


# == Nitaqat sanctions =====================================================================
def _red_request(s: Scenario, service: str):  # type: ignore[no-untyped-def]
    """One request of each service red withdraws, valid in every other respect."""
    calls = {
        "visa.issue": lambda: s.issue_visa(EST, "v2"),
        "visa.compensatory_request": lambda: s.compensatory_visa(EST, S1),
        "recruitment.balance_request": lambda: s.recruitment(EST, "balance"),
        "recruitment.disbursement_request": lambda: s.recruitment(EST, "disbursement"),
        "permit.issue": lambda: s.issue_permit(EST, W2),
        "permit.renew": lambda: s.renew_permit(EST, W),
        "permit.temporary": lambda: s.temporary_permit(EST, W2),
        "establishment.branch_add": lambda: s.add_branch(EST, "b9"),
        "certificate.saudization": lambda: s.certificate(EST),
    }
    assert set(calls) == set(RED_WITHDRAWN)
    return calls[service]()


@pytest.mark.parametrize("service", sorted(RED_WITHDRAWN))
def test_red_band_withdraws_services(s: Scenario, service: str) -> None:
    world(s, owner_counts=False)  # green only through S1
    accepted(s.issue_permit(EST, W, months=3))
    accepted(s.hire_expat(EST, W2))
    accepted(s.passports(S1, "final_exit_confirmed"))  # the only Saudi leaves
    assert s.band(EST) == "red"
    refused(_red_request(s, service), "NITAQAT_RED_SERVICE")
    accepted(s.hire_saudi(EST))
    assert s.band(EST) != "red"
    accepted(_red_request(s, service))


def test_red_band_keeps_other_services(s: Scenario) -> None:
    world(s, owner_counts=False)
    accepted(s.issue_permit(EST, W, months=12))
    accepted(s.passports(S1, "final_exit_confirmed"))
    assert s.band(EST) == "red"
    accepted(s.hire_expat(EST, W2))
    accepted(s.change_profession(EST, W))
    accepted(s.report_absence(EST, W))
    accepted(s.upload_wages(EST, "2025-01"))


def test_visas_need_medium_green(s: Scenario) -> None:
    accepted(s.open_file(EST, owner_counts_as_saudi=False))
    s.staff(EST, saudis=1, expats=7)
    assert s.band(EST) == "low_green"
    refused(s.issue_visa(EST, "v1"), "NITAQAT_BAND_TOO_LOW")
    s.staff(EST, saudis=1)
    assert s.band(EST) in ("medium_green", "high_green", "platinum")
    accepted(s.issue_visa(EST, "v1"))


def test_band_change_is_recorded_after_a_workforce_move(s: Scenario) -> None:
    accepted(s.open_file(EST, owner_counts_as_saudi=False))
    assert s.establishment(EST).band == "red"
    outcome = accepted(s.hire_saudi(EST))
    changed = event_of(outcome, "establishment.band_changed").payload
    assert (changed["from_band"], changed["to_band"]) == ("red", "medium_green")
    assert s.establishment(EST).band == "medium_green"


def _band_moved_by_time_alone(s: Scenario) -> str:
    """EST red for eight weeks, then 3 Saudis of 9: the 26-week average climbs with no
    new request. Returns the band recorded before time moved it."""
    s.at("2025-01-05")
    accepted(s.open_file(EST, owner_counts_as_saudi=False))
    s.staff(EST, expats=5)
    accepted(s.hire_expat(EST, W))
    s.at("2025-03-02").pay_wages(EST, months=3)
    s.staff(EST, saudis=3)
    s.at("2025-05-01").pay_wages(EST, months=2)
    recorded = s.establishment(EST).band
    s.at("2025-07-06")
    assert s.band(EST) != recorded
    return recorded


def test_band_moved_by_time_is_recorded_with_the_next_request(s: Scenario) -> None:
    recorded = _band_moved_by_time_alone(s)
    outcome = accepted(s.temporary_permit(EST, W))  # permits survive 2 months' arrears
    changed = event_of(outcome, "establishment.band_changed").payload
    assert changed["from_band"] == recorded and changed["to_band"] == s.band(EST)
    assert s.establishment(EST).band == s.band(EST)


def test_refusal_records_nothing_else_even_when_time_moved_the_band(s: Scenario) -> None:
    """Regression: a refusal also recorded establishment.band_changed."""
    _band_moved_by_time_alone(s)
    refused(s.issue_permit(EST, W, months=5), "PERMIT_PERIOD")


# == Wage protection =======================================================================
def test_two_months_late_suspends_all_but_work_permits(s: Scenario) -> None:
    world(s)
    accepted(s.at("2025-02-28").change_profession(EST, W))  # January due: 1 month late
    s.at("2025-03-01")  # January and February unfiled
    refused(s.change_profession(EST, W), "WPS_SUSPENDED")
    refused(s.hire_saudi(EST), "WPS_SUSPENDED")
    accepted(s.issue_permit(EST, W))  # work permits are spared
    accepted(s.upload_wages(EST, "2025-02"))  # filing is how a suspension ends
    accepted(s.change_profession(EST, W, "carpenter"))


def test_three_months_late_still_spares_work_permits(s: Scenario) -> None:
    world(s)
    s.at("2025-04-01")  # January-March unfiled; day 90 of W
    refused(s.change_profession(EST, W), "WPS_SUSPENDED")
    accepted(s.issue_permit(EST, W))


def test_more_than_three_months_late_suspends_everything(s: Scenario) -> None:
    world(s)
    accepted(s.issue_permit(EST, W, months=6))  # until 2025-06-30
    accepted(s.delegate("d1"))
    s.at("2025-05-01")  # January-April unfiled
    refused(s.renew_permit(EST, W), "WPS_SUSPENDED_ALL")
    refused(s.change_profession(EST, W), "WPS_SUSPENDED_ALL")
    accepted(s.grant(EST, "d1", ["worker.join"]))  # account management is not suspended
    accepted(s.upload_wages(EST, "2025-04"))
    accepted(s.renew_permit(EST, W))


def test_more_than_three_months_late_frees_workers_to_transfer(s: Scenario) -> None:
    world(s, other=True)
    s.at("2025-05-01")
    s.pay_wages(OTHER, months=3)
    outcome = accepted(s.transfer(OTHER, W, OTHER))  # day 120, no notice
    moved = event_of(outcome, "worker.service_transferred").payload
    assert moved["basis"] == "wage_arrears" and moved["employer_months_late"] == 4


def test_three_months_late_does_not_free_workers(s: Scenario) -> None:
    world(s, other=True)
    s.at("2025-04-01")
    s.pay_wages(OTHER, months=3)
    refused(s.transfer(OTHER, W, OTHER), "TRANSFER_FIRST_YEAR")


def test_one_wage_file_a_month(s: Scenario) -> None:
    world(s)
    s.at("2025-02-10")
    accepted(s.upload_wages(EST, "2025-01"))
    refused(s.upload_wages(EST, "2025-01"), "WPS_MONTH_DUPLICATE")
    accepted(s.upload_wages(EST, "2025-02"))  # the current month has begun
    refused(s.upload_wages(EST, "2025-03"), "WPS_MONTH_FUTURE")
    refused(s.at("2025-02-28").upload_wages(EST, "2025-03"), "WPS_MONTH_FUTURE")
    accepted(s.at("2025-03-01").upload_wages(EST, "2025-03"))


# == Visas and recruitment =================================================================
def test_visa_ids_are_unique(s: Scenario) -> None:
    world(s)
    accepted(s.issue_visa(EST, "v1"))
    refused(s.issue_visa(EST, "v1"), "VISA_EXISTS")
    accepted(s.issue_visa(EST, "v2"))


def test_cancel_an_open_visa(s: Scenario) -> None:
    world(s)
    refused(s.cancel_visa(EST, "v1"), "VISA_UNKNOWN")
    accepted(s.issue_visa(EST, "v1"))
    accepted(s.cancel_visa(EST, "v1"))
    refused(s.cancel_visa(EST, "v1"), "VISA_UNKNOWN")
    accepted(s.issue_visa(EST, "v2"))
    accepted(s.hire_expat(EST, W2, visa_id="v2"))
    refused(s.cancel_visa(EST, "v2"), "VISA_UNKNOWN")  # used by a worker who came


def test_compensatory_visa_replaces_a_worker_who_left(s: Scenario) -> None:
    world(s, other=True)
    refused(s.compensatory_visa(EST, W), "VISA_NO_DEPARTURE")
    accepted(s.passports(W, "final_exit_confirmed"))
    refused(s.compensatory_visa(OTHER, W, by="owner2"), "VISA_NO_DEPARTURE")
    accepted(s.compensatory_visa(EST, W))


# == Auditor-ordered reversals =============================================================
def test_reversal_must_name_something_it_can_undo(s: Scenario) -> None:
    world(s)
    accepted(s.delegate("d1"))
    stray = str(uuid.uuid4())
    refused(s.reverse(stray, worker=W), "REVERSAL_NOT_APPLICABLE")
    refused(s.reverse(stray, delegate="d1"), "REVERSAL_NOT_APPLICABLE")
    refused(s.reverse(stray), "REVERSAL_NOT_APPLICABLE")
    hired = event_of(accepted(s.hire_expat(EST, W2)), "worker.joined")
    refused(s.reverse(hired.event_id, worker=W2), "REVERSAL_NOT_APPLICABLE")
    granted = event_of(accepted(s.grant(EST, "d1", ["worker.join"])),
                       "account.delegation_granted")
    accepted(s.reverse(granted.event_id, delegate="d1"))


def test_reversal_undoes_an_absence_report(s: Scenario) -> None:
    world(s)
    accepted(s.issue_permit(EST, W, months=12))
    expats = s.establishment(EST).expatriates
    report = event_of(accepted(s.report_absence(EST, W)), "worker.absence_reported")
    s.at("2025-03-01").pay_wages(EST, months=2)  # long past the cancellation window
    refused(s.cancel_absence(EST, W), "ABSENCE_CANCEL_WINDOW")
    refused(s.reverse(report.event_id, worker=W, by="owner"), "ESTABLISHMENT_UNKNOWN")
    outcome = accepted(s.reverse(report.event_id, worker=W))
    cancelled = event_of(outcome, "worker.absence_cancelled").payload
    assert cancelled["report_event_id"] == report.event_id
    assert cancelled["reversal"]["ordered_by"] == "staff:auditor"
    assert cancelled["reversal"]["reverses_event_id"] == report.event_id
    assert event_of(outcome, "establishment.worker_joined").originator_id == \
        establishment_stream(EST)
    assert s.worker(W).absence is None
    assert s.establishment(EST).expatriates == expats
    refused(s.reverse(report.event_id, worker=W), "REVERSAL_NOT_APPLICABLE")  # once


def test_reversal_undoes_a_transfer(s: Scenario) -> None:
    world(s, other=True)
    moved = event_of(accepted(s.transfer(EST, W, OTHER)), "worker.service_transferred")
    outcome = accepted(s.reverse(moved.event_id, worker=W))
    back = event_of(outcome, "worker.service_transferred").payload
    assert (back["from_establishment_id"], back["to_establishment_id"]) == (OTHER, EST)
    assert back["basis"] == "reversal"
    streams = {e.originator_id for e in outcome.events}
    assert {establishment_stream(EST), establishment_stream(OTHER)} <= streams
    assert s.worker(W).employer == EST
    assert (s.establishment(EST).expatriates, s.establishment(OTHER).expatriates) == (1, 0)
    # The reversal is itself the latest transfer now; the original no longer applies.
    refused(s.reverse(moved.event_id, worker=W), "REVERSAL_NOT_APPLICABLE")


def test_reversal_undoes_a_grant(s: Scenario) -> None:
    world(s)
    accepted(s.delegate("d1"))
    granted = event_of(accepted(s.grant(EST, "d1", ["worker.join"])),
                       "account.delegation_granted")
    accepted(s.confirm(EST, "d1"))
    accepted(s.hire_saudi(EST, by="d1"))
    outcome = accepted(s.reverse(granted.event_id, delegate="d1"))
    revoked = event_of(outcome, "account.delegation_revoked")
    assert revoked.originator_id == account_stream("d1")
    assert revoked.payload["reversal"]["reverses_event_id"] == granted.event_id
    refused(s.hire_saudi(EST, by="d1"), "AUTH_DELEGATE_REVOKED")
    refused(s.reverse(granted.event_id, delegate="d1"), "REVERSAL_NOT_APPLICABLE")


def test_reversal_withdraws_a_pending_final_exit(s: Scenario) -> None:
    world(s)
    exit_ = event_of(accepted(s.final_exit(EST, W)), "worker.final_exit_requested")
    refused(s.change_profession(EST, W), "WORKER_EXIT_PENDING")
    accepted(s.reverse(exit_.event_id, worker=W))
    accepted(s.change_profession(EST, W))


def test_only_an_auditor_orders_a_reversal(s: Scenario) -> None:
    """Regression: an office clerk could order audit.reversal."""
    world(s)
    accepted(s.issue_permit(EST, W, months=12))
    report = event_of(accepted(s.report_absence(EST, W)), "worker.absence_reported")
    refused(s.reverse(report.event_id, worker=W, by="staff:clerk"), "AUTH_STAFF_ROLE")


@pytest.mark.parametrize("service, payload", [
    ("account.login", {}),
    ("account.password_changed", {"new_credential_id": "c-x"}),
])
def test_clerk_self_service_is_refused_not_a_crash(s: Scenario, service: str,
                                                  payload: dict[str, str]) -> None:
    """Regression: AssertionError in delegation._own_account escaped submit()."""
    world(s)
    refused(s.submit(service, payload, by="staff:clerk"), "AUTH_STAFF_ROLE")


# == What a refusal records ================================================================
@pytest.mark.parametrize("make, rule", [
    (lambda s: s.hire_saudi(EST, by="owner2"), "AUTH_NOT_OWNER"),
    (lambda s: s.issue_permit(EST, W, months=5), "PERMIT_PERIOD"),
    (lambda s: s.at("2025-05-01").change_profession(EST, W), "WPS_SUSPENDED_ALL"),
    (lambda s: s.passports(W, "returned", by="sys:nic"), "AUTH_INTEGRATION_SERVICE"),
    (lambda s: s.hire_saudi(EST, by="ghost"), "AUTH_UNKNOWN_ACCOUNT"),
])
def test_refusal_records_one_rejection_in_the_establishments_stream(
        s: Scenario, make, rule: str) -> None:  # type: ignore[no-untyped-def]
    world(s, other=True)
    before = s.recorded()
    stream = establishment_stream(EST)
    est_version = len(s.ledger.stream_events(stream))
    worker_version = len(s.ledger.stream_events(worker_stream(W)))
    outcome = refused(make(s), rule)
    rejected = outcome.events[0]
    assert rejected.originator_id == stream
    assert rejected.establishment_id == EST
    assert rejected.payload["service"] == outcome.service
    assert s.recorded() == before + 1  # nothing else
    assert s.ledger.stream_events(stream)[-1].event_type == "request.rejected"
    assert len(s.ledger.stream_events(stream)) == est_version + 1
    assert len(s.ledger.stream_events(worker_stream(W))) == worker_version


def test_refusal_without_establishment_goes_to_the_actors_account(s: Scenario) -> None:
    world(s)
    before = s.recorded()
    outcome = refused(s.hire_saudi("1-999"), "ESTABLISHMENT_UNKNOWN")
    assert outcome.events[0].originator_id == account_stream("owner")
    assert s.recorded() == before + 1


def test_refusal_of_an_unknown_actor_is_still_recorded(s: Scenario) -> None:
    outcome = refused(s.open_file(EST, owner="ghost", register=False),
                      "AUTH_UNKNOWN_ACCOUNT")
    assert outcome.events[0].originator_id == refusal_stream("ghost")
    assert isinstance(s.ledger.load(refusal_stream("ghost")), Unattributed)
    assert s.recorded() == 1


# == Every rule code is tested =============================================================
def test_every_rule_code_is_mentioned_here() -> None:
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    literals = {n.value for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    missing = sorted(set(RULE_CODES) - literals)
    assert not missing, f"rule codes without a test in {Path(__file__).name}: {missing}"


def test_every_code_mentioned_here_exists() -> None:
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    looks_like_codes = {n.value for n in ast.walk(tree)
                        if isinstance(n, ast.Constant) and isinstance(n.value, str)
                        and n.value.isupper() and "_" in n.value}
    assert looks_like_codes <= set(RULE_CODES), sorted(looks_like_codes - set(RULE_CODES))


def test_an_owner_locked_out_by_a_thief_resets_through_national_sso(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """AUTH_STALE_CREDENTIAL after the thief's password change; national SSO resets it."""
    from domain.ledger import Ledger
    from domain.requests import parse_request
    from tests.strategies import OWNERS, START, bootstrap, request
    from tests.test_ledger_properties import counting_clock

    ledger = Ledger(f"sqlite:///{tmp_path}/e.sqlite", clock=counting_clock())
    steps = bootstrap()[:1]
    for n, (service, payload, who) in enumerate(steps):
        ledger.submit(parse_request(request(n, START, service, payload, actor=who["actor"])))
    owner = OWNERS[0]
    thief = request(10, START, "account.password_changed", {"new_credential_id": "stolen"},
                    actor=owner)
    assert ledger.submit(parse_request(thief)).accepted
    locked = request(11, START, "account.password_changed", {"new_credential_id": "mine"},
                     actor=owner)
    assert ledger.submit(parse_request(locked)).rule == "AUTH_STALE_CREDENTIAL"
    reset = dict(locked, request_id="h12", auth={"method": "national_sso",
                                                 "credential_id": "sso-assertion"})
    assert ledger.submit(parse_request(reset)).accepted
    back = request(13, START, "account.login", {}, actor=owner, cred="mine")
    assert ledger.submit(parse_request(back)).accepted
