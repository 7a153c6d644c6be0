"""Seed 001's story end to end: the counterfactual without the thief's requests, and a
remediation that, once applied, makes the actual state equal to it."""

from __future__ import annotations

from pathlib import Path

from domain.ledger import Ledger
from replay import remediation
from replay.counterfactual import Exclusion, build, differences, state
from tests.leak_scenario import build_leak_scenario
from tests.test_ledger_properties import counting_clock

AUDITOR = "staff:aud-7"


def _workforce(ledger: Ledger, number: str) -> dict[str, tuple[str | None, str]]:
    s = state(ledger, number)
    return {w["worker_id"]: (w["employer"], w["status"]) for w in s.workers}


def test_counterfactual_and_remediation_of_a_leaked_password(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/e.sqlite", clock=counting_clock())
    scenario = build_leak_scenario(ledger)
    exclusion = Exclusion(scenario.owner_account_id, scenario.leaked_at,
                          devices=frozenset({scenario.thief_device_id}))
    (tmp_path / "cf").mkdir()
    cf = build(ledger, exclusion, tmp_path / "cf")

    # exactly the thief's requests are taken out; the owner's later work is decided again
    assert tuple(cf.excluded) == scenario.thief_request_ids
    assert cf.replayed is not None and cf.replayed.decided > 0
    assert set(cf.establishments) == {scenario.establishment_id,
                                      scenario.receiving_establishment_id}

    # without them: the three workers still employed, no absence reports
    would = _workforce(cf.ledger, scenario.establishment_id)
    for worker in scenario.transferred_worker_ids + scenario.reported_worker_ids:
        assert would[worker] == (scenario.establishment_id, "active")
    assert not set(scenario.transferred_worker_ids) & set(
        _workforce(cf.ledger, scenario.receiving_establishment_id))
    diff = differences(ledger, cf.ledger, cf.establishments)
    subjects = {d["subject"] for d in diff}
    assert {f"worker {w}" for w in scenario.transferred_worker_ids
            + scenario.reported_worker_ids} <= subjects

    # the remediation: one reversal per report and per transfer, a dry run first
    steps = remediation.plan(ledger, cf.excluded_positions, AUDITOR, "leaked password")
    reversals = [s for s in steps if s.request is not None]
    assert len(reversals) == len(scenario.reported_worker_ids) + len(
        scenario.transferred_worker_ids)
    assert _workforce(ledger, scenario.establishment_id) != would  # nothing applied yet

    outcomes = remediation.apply(ledger, steps)
    assert all(o.accepted for _, o in outcomes), [(s.subject, o.rule) for s, o in outcomes]
    for step, outcome in outcomes:
        reversal = [e for e in outcome.events if "reversal" in e.payload]
        assert reversal and reversal[0].payload["reversal"]["reverses_event_id"] == \
            step.event_id
        assert reversal[0].request["actor"]["account_id"] == AUDITOR

    # now what is equals what would have been, in both establishments
    for number in cf.establishments:
        assert _workforce(ledger, number) == _workforce(cf.ledger, number), number
    # and a second plan finds nothing left to reverse
    again = remediation.plan(ledger, cf.excluded_positions, AUDITOR, "leaked password")
    assert [s for s in again if s.request is not None] == []
