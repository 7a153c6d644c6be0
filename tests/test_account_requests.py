"""The account-requests read model (projections/account_requests.py): its rows do not
depend on the order a request's events arrive in (partitions are consumed apart), nor on
an event delivered twice (DESIGN.md invariants 4 and 5). A fold over dicts, no database."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.ledger import Ledger
from projections import account_requests
from projections.rows import MemoryRows
from tests.leak_scenario import build_leak_scenario
from tests.test_credential_audit import all_records
from tests.test_ledger_properties import counting_clock

Records = list[dict[str, Any]]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Records:
    folder = tmp_path_factory.mktemp("account-requests")
    ledger = Ledger(f"sqlite:///{folder}/events.sqlite", clock=counting_clock())
    build_leak_scenario(ledger)
    return all_records(ledger)


def folded(order: Records) -> dict[Any, Any]:
    rows = MemoryRows()  # the projection's own table, and no other: it reads none
    for record in order:
        account_requests.PROJECTION.fold(rows, record)
    return rows.tables["account_requests"]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_and_any_repeat_give_the_same_rows(records: Records, data: st.DataObject
                                                     ) -> None:
    order = data.draw(st.permutations(records))
    repeats = data.draw(st.lists(st.sampled_from(records), max_size=20))
    assert folded([*order, *repeats]) == folded(records)


def test_a_row_is_the_requests_events_in_position_order(records: Records) -> None:
    rows = folded(records)
    by_request: dict[str, list[int]] = {}
    for r in records:
        by_request.setdefault(r["request"]["request_id"], []).append(r["position"])
    held = {row["request_id"]: [e["position"] for e in account_requests.expanded(
        orjson.loads(row["events"]), row["occurred_at"])] for row in rows.values()}
    assert held == by_request
    assert any(len(positions) > 1 for positions in held.values())
