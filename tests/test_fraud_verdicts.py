"""The live detector's verdicts read back from its tables (projections/fraud_verdicts.py)
are the in-memory detector's over the same records (domain.fraud.Detector.scored),
whatever the batches the projection runner folded them in; and the tables say when
they have not scored a request yet, so that the credential audit replays instead.
Real SQLite read models, written by the real ProjectionHandler.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from consumers.projection_runner import ProjectionHandler
from consumers.runtime import Delivery
from domain.fraud import SHARED_DEVICE, Detector
from projections import fraud_alerts
from projections.fraud_verdicts import LiveVerdicts
from tests.test_fraud import OTHER, History, Record, mixed_history, thief_night, utc


def shared_history() -> History:
    """mixed_history, then the thief's phone working a second, unrelated account: the
    shared-device rule, which needs every account's view."""
    h = mixed_history()
    h.habits(account=OTHER, device="d9", ip="5.9.9.9", riyadh_hour=9, sessions=2)
    thief_night(h, session="accomplice")
    h.request("absence.report", utc("2025-02-10", 4), account=OTHER, session="acc2",
              device="dev-thief", ip="185.220.1.1")
    return h


def firsts(records: Sequence[Record]) -> list[Record]:
    out: dict[str, Record] = {}
    for r in records:
        out.setdefault(r["request"]["request_id"], r)
    return list(out.values())


def folded(records: Sequence[Record], cuts: Sequence[int], folder: str) -> LiveVerdicts:
    engine = create_engine(f"sqlite:///{folder}/read-models.sqlite")
    handler = ProjectionHandler(engine, fraud_alerts.PROJECTIONS)
    deliveries = [Delivery("sijil.events.v1", 0, n, None, r) for n, r in enumerate(records)]
    bounds = sorted({0, *(c % (len(deliveries) + 1) for c in cuts), len(deliveries)})
    for begin, end in itertools.pairwise(bounds):
        with engine.begin() as conn:
            handler.handle(conn, deliveries[begin:end])
        handler.committed()
    return LiveVerdicts(engine)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_the_tables_verdicts_are_the_detectors_whatever_the_batches(cuts: list[int]
                                                                     ) -> None:
    h = shared_history()
    detector = Detector().run(h.records)
    with tempfile.TemporaryDirectory() as folder:
        verdicts = folded(h.records, cuts, folder)
        try:
            requests = firsts(h.records)
            assert verdicts.covers(requests)
            got = verdicts.scored(requests)
        finally:
            verdicts.close()
    expected = {s.facts.request_id: s for s in detector.all_scored()}
    assert got == expected
    assert any(SHARED_DEVICE in s.signals for s in got.values()), "no shared rule tested"
    assert any(s.alerted for s in got.values()) and not all(s.alerted for s in got.values())


def test_requests_the_projection_has_not_folded_are_not_covered(tmp_path: Path) -> None:
    h = shared_history()
    requests = firsts(h.records)
    half = len(h.records) // 2
    verdicts = folded(h.records[:half], [], str(tmp_path))
    try:
        assert verdicts.covers([r for r in requests if r["position"] <= half])
        assert not verdicts.covers(requests)
    finally:
        verdicts.close()


def test_read_models_without_the_fraud_projection_give_no_verdicts(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    assert LiveVerdicts.open(f"sqlite:///{missing}") is None
    assert not missing.exists(), "asking must not create the file"
    create_engine(f"sqlite:///{tmp_path}/empty.sqlite").connect().close()
    assert LiveVerdicts.open(f"sqlite:///{tmp_path}/empty.sqlite") is None
