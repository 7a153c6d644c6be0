"""The leaked-credential audit (replay/credential_audit.py) on seed 001's story told by
hand (tests/leak_scenario.py): the audit since the leak lists every request made with
the owner's credential, and exactly the thief's are suspicious, with what they changed;
the detector over the whole history alerts the thief's requests and none of the owner's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func
from typer.testing import CliRunner

from consumers.projection_runner import ProjectionHandler
from consumers.runtime import Delivery
from domain.envelope import contract_record
from domain.fraud import OFF_HOURS, SENSITIVE_BURST, UNFAMILIAR_DEVICE, Detector
from domain.ingest import ingest
from domain.ledger import Ledger
from portal.audit_cli import audit_app
from projections import account_requests, fraud_alerts, workers
from projections.database import projections_engine
from projections.fraud_verdicts import LiveVerdicts
from projections.rows import MemoryRows, Projection, fold_all
from replay.credential_audit import (
    LIVE,
    READ_MODELS,
    REPLAYED,
    STORE,
    Audit,
    AuditedRequest,
    audit_credential,
)
from simulator import simulate
from tests.leak_scenario import LeakScenario, build_leak_scenario
from tests.test_ledger_properties import counting_clock


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ledger, LeakScenario,
                                                                      str]]:
    folder = tmp_path_factory.mktemp("leak")
    url = f"sqlite:///{folder}/events.sqlite"
    ledger = Ledger(url, clock=counting_clock())
    yield ledger, build_leak_scenario(ledger), url


def all_records(ledger: Ledger) -> list[dict[str, Any]]:
    records, start = [], 1
    while batch := ledger.all_events(start=start, limit=500):
        records += [contract_record(e, position) for position, e in batch]
        start = batch[-1][0] + 1
    return records


def test_the_audit_lists_every_request_with_the_credential_since_the_leak(story: Any
                                                                           ) -> None:
    ledger, s, _ = story
    audit = audit_credential(ledger, s.owner_account_id, s.leaked_at)
    assert [r.request_id for r in audit.requests] == [*s.thief_request_ids,
                                                      *s.owner_request_ids_after]
    assert audit.credentials == (s.owner_credential_id,)
    assert all(r.credential_id == s.owner_credential_id for r in audit.requests)


def test_exactly_the_thiefs_requests_are_suspicious(story: Any) -> None:
    ledger, s, _ = story
    audit = audit_credential(ledger, s.owner_account_id, s.leaked_at)
    suspicious = audit.suspicious
    assert [r.request_id for r in suspicious] == list(s.thief_request_ids)
    assert {(r.session_id, r.device_id, r.ip) for r in suspicious} == \
        {(s.thief_session_id, s.thief_device_id, s.thief_ip)}
    for r in suspicious:
        assert {UNFAMILIAR_DEVICE, OFF_HOURS, SENSITIVE_BURST} <= set(r.signals), r
    for r in audit.requests:
        if r.request_id in s.owner_request_ids_after:
            assert r.signals == () and r.device_id == s.owner_device_id


def test_the_thiefs_effects(story: Any) -> None:
    ledger, s, _ = story
    audit = audit_credential(ledger, s.owner_account_id, s.leaked_at)
    thief = audit.suspicious
    totals = audit.effect_totals(thief)
    assert totals["absence_report"] == 2 and totals["transfer_out"] == 3
    assert sum(totals.values()) == 5
    effects = [e for r in thief for e in r.effects]
    assert sorted(e.worker_id for e in effects if e.kind == "transfer_out") == \
        sorted(s.transferred_worker_ids)
    assert {e.counterpart for e in effects if e.kind == "transfer_out"} == \
        {s.receiving_establishment_id}
    assert sorted(e.worker_id for e in effects if e.kind == "absence_report") == \
        sorted(s.reported_worker_ids)
    groups = audit.groups(thief)
    assert [len(v) for v in groups.values()] == [1, 2, 3]
    assert list(groups) == [("-", "account.login"),
                            (s.establishment_id, "absence.report"),
                            (s.establishment_id, "worker.service_transfer")]


def test_an_earlier_since_adds_the_owners_history_and_nothing_suspicious(story: Any
                                                                         ) -> None:
    ledger, s, _ = story
    audit = audit_credential(ledger, s.owner_account_id, "2025-01-01T00:00:00Z")
    ids = [r.request_id for r in audit.requests]
    assert ids == [*s.owner_request_ids_before, *s.thief_request_ids,
                   *s.owner_request_ids_after]
    assert [r.request_id for r in audit.suspicious] == list(s.thief_request_ids)


def test_the_audit_reads_only_the_accounts_events(story: Any) -> None:
    ledger, s, _ = story
    audit = audit_credential(ledger, s.owner_account_id, s.leaked_at)
    everything = all_records(ledger)
    owners = [r for r in everything if r["request"]["actor"]["account_id"] ==
              s.owner_account_id]
    assert audit.history_events == len(owners) < len(everything)


def test_the_window_can_end(story: Any) -> None:
    ledger, s, _ = story
    audit = audit_credential(ledger, s.owner_account_id, s.thief_started_at,
                             until=s.thief_ended_at)
    assert [r.request_id for r in audit.requests] == list(s.thief_request_ids)


def test_the_detector_alerts_the_thief_and_not_the_owner(story: Any) -> None:
    ledger, s, _ = story
    records = all_records(ledger)
    detector = Detector().run(records)
    assert detector.alerted_requests() == set(s.thief_request_ids)
    rows = MemoryRows()
    fold_all(fraud_alerts.PROJECTIONS, rows, records)
    assert {a["request_id"] for a in rows.history["fraud_alerts"]} == \
        set(s.thief_request_ids)
    assert {a["establishment_id"] for a in rows.history["fraud_alerts"]} == \
        {None, s.establishment_id}


# == the command line ======================================================================
def test_cli_credential(story: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, s, url = story
    monkeypatch.setenv("SIJIL_DATABASE_URL", url)
    runner = CliRunner()
    result = runner.invoke(audit_app, ["credential", s.owner_account_id, "--since",
                                       s.leaked_at, "--json"])
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.output)
    assert body["suspicious"] == list(s.thief_request_ids)
    assert body["suspicious_effects"] == {"absence_report": 2, "transfer_out": 3}
    table = runner.invoke(audit_app, ["credential", s.owner_account_id, "--since",
                                      s.leaked_at])
    assert table.exit_code == 0, table.output
    assert s.thief_device_id in table.output and "6 suspicious" in table.output
    bad = runner.invoke(audit_app, ["credential", s.owner_account_id, "--since", "soon"])
    assert bad.exit_code != 0


def test_cli_alerts(story: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, s, _ = story
    url = f"sqlite:///{tmp_path}/projections.sqlite"
    monkeypatch.setenv("SIJIL_PROJECTIONS_URL", url)
    runner = CliRunner()
    empty = runner.invoke(audit_app, ["alerts", "--json"])
    assert empty.exit_code == 0 and orjson.loads(empty.output) == []
    engine = projections_engine(url)
    handler = ProjectionHandler(engine, fraud_alerts.PROJECTIONS)
    deliveries = [Delivery("t", 0, n, None, r) for n, r in enumerate(all_records(ledger))]
    with engine.begin() as conn:
        handler.handle(conn, deliveries)
    engine.dispose()
    result = runner.invoke(audit_app, ["alerts", "--limit", "4", "--json"])
    assert result.exit_code == 0, result.output
    alerts = orjson.loads(result.output)
    assert [a["request_id"] for a in alerts] == list(reversed(s.thief_request_ids))[:4]
    assert all(a["device_id"] == s.thief_device_id and a["score"] >= 0.6 for a in alerts)
    shown = runner.invoke(audit_app, ["alerts"])
    assert shown.exit_code == 0 and s.thief_request_ids[0] in shown.output


# == the live detector's verdicts ==========================================================
def read_models(ledger: Ledger, url: str, records: int | None = None,
                projections: tuple[Projection, ...] = fraud_alerts.PROJECTIONS
                ) -> LiveVerdicts:
    """The fraud projection (or `projections`) folded by the real ProjectionHandler into
    SQLite read models, over the store's first `records` records (all by default)."""
    engine = projections_engine(url)
    handler = ProjectionHandler(engine, projections)
    everything = all_records(ledger)[:records]
    with engine.begin() as conn:
        handler.handle(conn, [Delivery("t", 0, n, None, r) for n, r in enumerate(everything)])
    handler.committed()
    return LiveVerdicts(engine)


def listed(audit: Audit) -> list[tuple[str, tuple[str, ...], float, bool]]:
    return [(r.request_id, r.signals, r.score, r.suspicious) for r in audit.requests]


def test_the_live_verdicts_give_the_replayed_audit_and_read_only_the_window(
        story: Any, tmp_path: Path) -> None:
    ledger, s, _ = story
    verdicts = read_models(ledger, f"sqlite:///{tmp_path}/p.sqlite")
    try:
        live = audit_credential(ledger, s.owner_account_id, s.leaked_at, verdicts=verdicts)
    finally:
        verdicts.close()
    replayed = audit_credential(ledger, s.owner_account_id, s.leaked_at)
    assert (live.source, replayed.source) == (LIVE, REPLAYED)
    assert listed(live) == listed(replayed)
    assert [r.request_id for r in live.suspicious] == list(s.thief_request_ids)
    assert [r.effects for r in live.requests] == [r.effects for r in replayed.requests]
    assert live.history_events < replayed.history_events
    window = {p for r in replayed.requests for p in r.positions}
    assert live.history_events == len(window)


def test_worker_names_come_from_the_workers_read_model_as_the_store_gives_them(
        story: Any, tmp_path: Path) -> None:
    ledger, s, _ = story
    verdicts = read_models(ledger, f"sqlite:///{tmp_path}/p.sqlite",
                           projections=(workers.PROJECTION, *fraud_alerts.PROJECTIONS))
    answers: list[dict[str, str]] = []
    asked = verdicts.worker_ids
    verdicts.worker_ids = lambda streams: answers.append(asked(streams)) or answers[-1]  # type: ignore[method-assign]
    try:
        live = audit_credential(ledger, s.owner_account_id, s.leaked_at, verdicts=verdicts)
    finally:
        verdicts.close()
    replayed = audit_credential(ledger, s.owner_account_id, s.leaked_at)
    assert live.source == LIVE and answers and answers[0], "no name came from the read model"
    assert [r.effects for r in live.requests] == [r.effects for r in replayed.requests]


def test_read_models_behind_the_store_are_not_trusted_the_detector_is_replayed(
        story: Any, tmp_path: Path) -> None:
    ledger, s, _ = story
    before_thief = min(p for r in audit_credential(ledger, s.owner_account_id,
                                                    s.leaked_at).suspicious
                       for p in r.positions) - 1
    verdicts = read_models(ledger, f"sqlite:///{tmp_path}/p.sqlite", before_thief)
    try:
        audit = audit_credential(ledger, s.owner_account_id, s.leaked_at, verdicts=verdicts)
    finally:
        verdicts.close()
    assert audit.source == REPLAYED
    assert [r.request_id for r in audit.suspicious] == list(s.thief_request_ids)


def test_read_models_of_another_store_are_not_taken_for_this_ones(
        story: Any, tmp_path: Path) -> None:
    ledger, s, _ = story
    verdicts = read_models(ledger, f"sqlite:///{tmp_path}/p.sqlite")
    try:
        with verdicts.engine.begin() as conn:  # as if folded from another history
            conn.execute(fraud_alerts.ACCOUNTS.update().values(
                state=func.json_set(fraud_alerts.ACCOUNTS.c.state, "$.last_request_id",
                                    "elsewhere")))
        audit = audit_credential(ledger, s.owner_account_id, s.leaked_at, verdicts=verdicts)
    finally:
        verdicts.close()
    assert audit.source == REPLAYED


def test_cli_credential_uses_the_read_models_unless_told_to_replay(
        story: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, s, url = story
    models = f"sqlite:///{tmp_path}/projections.sqlite"
    read_models(ledger, models).close()
    monkeypatch.setenv("SIJIL_DATABASE_URL", url)
    monkeypatch.setenv("SIJIL_PROJECTIONS_URL", models)
    runner = CliRunner()
    live = runner.invoke(audit_app, ["credential", s.owner_account_id, "--since",
                                     s.leaked_at, "--json"])
    replayed = runner.invoke(audit_app, ["credential", s.owner_account_id, "--since",
                                         s.leaked_at, "--json", "--replay"])
    assert live.exit_code == 0 and replayed.exit_code == 0, live.output + replayed.output
    live_body, replayed_body = orjson.loads(live.output), orjson.loads(replayed.output)
    assert (live_body["signals_from"], replayed_body["signals_from"]) == (LIVE, REPLAYED)
    assert live_body["suspicious"] == replayed_body["suspicious"] == list(s.thief_request_ids)
    table = runner.invoke(audit_app, ["credential", s.owner_account_id, "--since",
                                      s.leaked_at])
    assert "live detector's verdicts" in table.output, table.output


# == the account's requests from the read models ===========================================
WITH_REQUESTS = (workers.PROJECTION, account_requests.PROJECTION, *fraud_alerts.PROJECTIONS)


def whole(audit: Audit) -> list[AuditedRequest]:
    return list(audit.requests)


def test_the_read_models_rows_give_the_stores_audit_without_reading_the_store(
        story: Any, tmp_path: Path) -> None:
    ledger, s, _ = story
    from_store = read_models(ledger, f"sqlite:///{tmp_path}/store.sqlite")
    from_rows = read_models(ledger, f"sqlite:///{tmp_path}/rows.sqlite",
                            projections=WITH_REQUESTS)
    try:
        store = audit_credential(ledger, s.owner_account_id, s.leaked_at,
                                 verdicts=from_store)
        rows = audit_credential(ledger, s.owner_account_id, s.leaked_at,
                                verdicts=from_rows)
        ended = audit_credential(ledger, s.owner_account_id, s.leaked_at,
                                 until="2025-03-10T03:00:00Z", verdicts=from_rows)
    finally:
        from_store.close()
        from_rows.close()
    assert (store.requests_from, rows.requests_from) == (STORE, READ_MODELS)
    assert rows.source == LIVE and rows.history_events == 0 < store.history_events
    assert whole(rows) == whole(store)
    assert [r.request_id for r in rows.suspicious] == list(s.thief_request_ids)
    assert [r.request_id for r in ended.requests] == list(s.thief_request_ids)


def test_rows_behind_the_store_are_not_taken_the_store_is_read(
        story: Any, tmp_path: Path) -> None:
    ledger, s, _ = story
    verdicts = read_models(ledger, f"sqlite:///{tmp_path}/p.sqlite",
                           projections=WITH_REQUESTS)
    try:
        with verdicts.engine.begin() as conn:  # one request's row lost
            conn.execute(account_requests.ACCOUNT_REQUESTS.delete().where(
                account_requests.ACCOUNT_REQUESTS.c.request_id == s.thief_request_ids[0]))
        audit = audit_credential(ledger, s.owner_account_id, s.leaked_at, verdicts=verdicts)
    finally:
        verdicts.close()
    assert audit.requests_from == STORE and audit.source == LIVE
    assert [r.request_id for r in audit.suspicious] == list(s.thief_request_ids)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, Path]:
    folder = tmp_path_factory.mktemp("simulated-audits")
    simulate(establishments=80, months=2, seed=5, leaks=2, out=folder / "r.jsonl")
    ledger = Ledger(f"sqlite:///{folder}/events.sqlite", clock=counting_clock())
    with (folder / "r.jsonl").open("rb") as requests:
        ingest(ledger, requests)
    return ledger, folder


def test_on_a_simulated_history_every_accounts_audit_is_the_same_from_rows_and_store(
        simulated: tuple[Ledger, Path]) -> None:
    ledger, folder = simulated
    records = all_records(ledger)
    since = records[len(records) // 3]["occurred_at"]
    accounts = sorted({r["request"]["actor"]["account_id"] for r in records})
    from_store = read_models(ledger, f"sqlite:///{folder}/store.sqlite")
    from_rows = read_models(ledger, f"sqlite:///{folder}/rows.sqlite",
                            projections=WITH_REQUESTS)
    sources: set[str] = set()
    effects: Counter[str] = Counter()
    try:
        for account in accounts:
            store = audit_credential(ledger, account, since, verdicts=from_store)
            rows = audit_credential(ledger, account, since, verdicts=from_rows)
            sources.add(rows.requests_from)
            assert whole(rows) == whole(store), account
            effects.update(rows.effect_totals())
    finally:
        from_store.close()
        from_rows.close()
    assert sources == {READ_MODELS} and len(accounts) > 50
    assert {"transfer_out", "absence_report", "hire", "permit_issued", "agent_appointed",
            "permission_granted", "password_changed"} <= set(effects)
