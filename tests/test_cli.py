"""The command line as an operator uses it: exit codes, messages, nothing half-recorded."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from domain.ledger import Ledger
from domain.settings import Settings
from portal.cli import app
from tests.strategies import bootstrap, request
from tests.test_ledger_properties import all_records

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIJIL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _good_lines() -> list[bytes]:
    from datetime import UTC, datetime, timedelta

    at = datetime(2025, 1, 5, 6, tzinfo=UTC)
    out = []
    for n, (service, payload, who) in enumerate(bootstrap()):
        who = dict(who)
        out.append(orjson.dumps(request(n, at + timedelta(minutes=n), service, payload,
                                        est=who.pop("est", None), actor=who.pop("actor"),
                                        role=who.pop("role", "owner"))))
    return out


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_ingest_records_every_good_line_and_names_each_bad_one(home: Path,
                                                             tmp_path: Path) -> None:
    good = _good_lines()
    bad_field = orjson.loads(good[5])
    bad_field["payload"]["worker_id"] = "5123456789"
    lines = [*good[:3], b"{not json", orjson.dumps(bad_field), *good[3:]]
    result = runner.invoke(app, ["ingest", str(_write(tmp_path / "r.jsonl", lines))])
    assert result.exit_code == 1, result.output
    assert "line 4: (request): Invalid JSON" in result.output
    assert "line 5: payload.worker_id: must start with 1 (national id), 2 (iqama)" in \
        result.output
    assert f"{len(good):,} requests decided" in result.output
    assert "2 malformed lines not recorded" in result.output
    records = all_records(Ledger(Settings().store_url()))
    assert {r["request"]["request_id"] for r in records} == {
        orjson.loads(line)["request_id"] for line in good}


def test_strict_stops_at_the_first_malformed_line(home: Path, tmp_path: Path) -> None:
    good = _good_lines()
    lines = [*good[:2], b'{"service": "permit.renew"}', *good[2:]]
    result = runner.invoke(app, ["ingest", "--strict", str(_write(tmp_path / "r.jsonl", lines))])
    assert result.exit_code == 1
    assert "line 3:" in result.output
    assert "2 requests decided" in result.output


def test_a_clean_file_exits_zero_and_prints_labels_in_both_languages(home: Path,
                                                                     tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(_write(tmp_path / "r.jsonl", _good_lines()))])
    assert result.exit_code == 0, result.output
    assert "فتح ملف منشأة" in result.output and "Establishment files opened" in result.output


def test_a_missing_file_is_a_clear_error(home: Path) -> None:
    result = runner.invoke(app, ["ingest", "/nonexistent/requests.jsonl"])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_simulate_then_ingest_then_nitaqat(home: Path, tmp_path: Path) -> None:
    out, plan = tmp_path / "r.jsonl", tmp_path / "plan.json"
    result = runner.invoke(app, ["simulate", "--establishments", "20", "--months", "1",
                                 "--seed", "3", "--out", str(out), "--plan", str(plan)])
    assert result.exit_code == 0, result.output
    planned = orjson.loads(plan.read_bytes())["services"]
    result = runner.invoke(app, ["ingest", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{sum(planned.values()):,} requests decided" in result.output
    result = runner.invoke(app, ["nitaqat", "--sample", "2"])
    assert result.exit_code == 0, result.output
    assert "Nitaqat band" in result.output


def test_project_adds_new_indexes_and_refuses_read_models_missing_a_new_table(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read models of an older version (the trail without its worker rows) would get the
    new table filled from here on only; the runner says so and which rebuild fixes it,
    before it reads the topic (no broker is running here)."""
    from sqlalchemy import inspect, text

    from consumers.projection_runner import OutdatedReadModels, ProjectionHandler
    from projections.catalog import ALL
    from projections.database import projections_engine

    home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{home}/projections.sqlite"
    monkeypatch.setenv("SIJIL_PROJECTIONS_URL", url)
    monkeypatch.setenv("SIJIL_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    engine = projections_engine(url)
    ProjectionHandler(engine, ALL)  # today's tables, all of them
    ProjectionHandler(engine, ALL)  # and again: nothing is missing
    with engine.begin() as conn:  # an index added since: made, no rebuild needed
        conn.execute(text("DROP INDEX workers_by_absence_filer"))
    ProjectionHandler(engine, ALL)
    assert "workers_by_absence_filer" in {
        i["name"] for i in inspect(engine).get_indexes("workers")}
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE trail_workers"))
    with pytest.raises(OutdatedReadModels, match="sijil rebuild trail"):
        ProjectionHandler(engine, ALL)
    engine.dispose()
    result = CliRunner().invoke(app, ["project"])
    assert result.exit_code == 2, result.output
    assert "trail_workers" in result.output and "sijil rebuild trail" in result.output
