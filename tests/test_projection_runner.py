"""Projections built from the real topic by the runner equal the same folds in memory;
the statistics equal the simulator's plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers.projecting import run_projections
from consumers.publisher import Publisher
from consumers.topics import ALERTS_FRAUD_TOPIC, ALERTS_NITAQAT_TOPIC
from domain.ingest import ingest
from domain.ledger import Ledger
from projections.catalog import ALL
from projections.database import projections_engine
from projections.reading import table_rows
from projections.rows import MemoryRows, fold_all
from simulator import simulate
from tests.kafka_reading import read_topic
from tests.test_ledger_properties import all_records, counting_clock


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, int]]:
    folder = tmp_path_factory.mktemp("projections")
    plan = folder / "plan.json"
    simulate(establishments=80, months=2, seed=23, out=folder / "r.jsonl", leaks=1, plan=plan)
    url = f"sqlite:///{folder}/events.sqlite"
    with (folder / "r.jsonl").open("rb") as lines:
        ingest(Ledger(url, clock=counting_clock()), lines)
    return url, orjson.loads(plan.read_bytes())["services"]


def _memory(store: str) -> MemoryRows:
    rows = MemoryRows()
    fold_all(ALL, rows, all_records(Ledger(store)))
    return rows


def _appended_order(row: dict[str, Any]) -> tuple[int, str]:
    """Appended rows by position; those without one (trail_workers) by their content."""
    return int(row.get("position", 0)), str(sorted(row.items()))


def test_runner_over_kafka_equals_the_folds_in_memory_and_the_plan(
        history: tuple[str, dict[str, int]], kafka_bootstrap: str, fresh_topic: Any,
        tmp_path: Path) -> None:
    store, planned = history
    topic = fresh_topic(partitions=4)
    publisher = Publisher(Ledger(store), kafka_bootstrap, topic)
    publisher.publish_pending()
    publisher.close()
    url = f"sqlite:///{tmp_path}/read.sqlite"
    stats = run_projections(url=url, bootstrap=kafka_bootstrap, topic=topic, batch=700)
    assert stats.dead_lettered == 0
    built = table_rows(projections_engine(url), ALL)
    memory = _memory(store)
    for table, rows in memory.tables.items():
        assert built[table] == rows, f"table {table} differs"
    for table, appended in memory.history.items():
        relayed = [{k: v for k, v in r.items() if k != "published"}  # set by the relay
                   for r in sorted(built[table].values(), key=_appended_order)]
        assert relayed == [{k: v for k, v in r.items() if k != "published"}
                           for r in sorted(appended, key=_appended_order)]
    for table, topic in (("nitaqat_alerts", ALERTS_NITAQAT_TOPIC),
                         ("fraud_alerts", ALERTS_FRAUD_TOPIC)):
        relayed_ids = {dict(m.headers)["alert_id"].decode()
                       for part in read_topic(kafka_bootstrap, topic).values() for m in part}
        assert built[table], f"the history raised no {table}"
        assert {r["alert_id"] for r in built[table].values()} <= relayed_ids
        assert all(r["published"] for r in built[table].values())
    counted: dict[str, int] = {}
    for row in built["service_stats"].values():
        counted[row["service"]] = counted.get(row["service"], 0) + row["accepted"] + \
            row["refused"]
    assert counted == {s: n for s, n in planned.items() if n}


def test_sijil_stats_json_equals_the_plan(history: tuple[str, dict[str, int]],
                                          kafka_bootstrap: str, fresh_topic: Any,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """The command an operator runs, not only the tables: its totals are the plan's."""
    from typer.testing import CliRunner

    from portal.cli import app

    store, planned = history
    topic = fresh_topic(partitions=3)
    monkeypatch.setenv("SIJIL_HOME", str(tmp_path))
    monkeypatch.setenv("SIJIL_DATABASE_URL", store)
    monkeypatch.setenv("SIJIL_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("SIJIL_EVENTS_TOPIC", topic)
    runner = CliRunner()
    for command in (["publish"], ["project"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    stats = orjson.loads(result.stdout)
    assert {code: row["total"] for code, row in stats.items()} == \
        {s: n for s, n in planned.items() if n}
    assert stats["permit.renew"]["ar"] == "الرخص المجددة"
