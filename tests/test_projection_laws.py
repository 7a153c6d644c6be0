"""Laws of the read side, against a real broker (invariants 4 and 5 of DESIGN.md).

(a) for any generated history, the projections built incrementally — the log published
    in parts, the runner re-run after each part with the same group and read-model
    database — equal those rebuilt from offset 0 in one run into a fresh database, row
    for row, and both equal the folds in memory;
(b) the read models are the same on PostgreSQL as on SQLite;
(c) a runner killed with SIGKILL mid-batch and restarted produces the same rows as one
    that never stopped.
"""

from __future__ import annotations

import itertools
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from consumers.projecting import run_projections
from consumers.publisher import Publisher
from domain.ingest import ingest
from domain.ledger import Ledger
from projections.catalog import ALL
from projections.database import projections_engine
from projections.reading import table_rows
from projections.rows import Key, MemoryRows, Row, fold_all
from simulator import simulate
from tests.strategies import histories
from tests.test_ledger_properties import all_records, counting_clock, lines

SCRIPT = Path(__file__).with_name("projection_process.py")
TABLES = {t.name: t for p in ALL for t in p.tables}
RELAY_MARKS = {("nitaqat_alerts", "published"), ("fraud_alerts", "published")}
Tables = dict[str, dict[Key, Row]]
_files = itertools.count()


def read_models(url: str) -> Tables:
    engine = projections_engine(url)
    try:
        return table_rows(engine, ALL)
    finally:
        engine.dispose()


def in_memory(records: list[dict[str, Any]]) -> Tables:
    """The folds over the store's records, keyed as table_rows keys them (without the
    relay's marks, which the runner sets after projecting)."""
    rows = MemoryRows()
    fold_all(ALL, rows, records)
    out: Tables = {name: {} for name in TABLES}
    out.update(rows.tables)
    for name, appended in rows.history.items():  # appended rows, keyed by primary key
        pk = [c.name for c in TABLES[name].primary_key.columns]
        out[name] = {tuple(r[c] for c in pk): r for r in appended}
    return without_relay_marks(out)


def without_relay_marks(tables: Tables) -> Tables:
    """The rows as the folds write them: `published` is the alerts relay's mark."""
    return {name: {k: {c: v for c, v in row.items()
                       if (name, c) not in RELAY_MARKS} for k, row in rows.items()}
            for name, rows in tables.items()}


def assert_same(built: Tables, expected: Tables, what: str) -> None:
    assert set(built) == set(expected)
    for table in sorted(expected):
        mine, theirs = built[table], expected[table]
        missing, extra = theirs.keys() - mine.keys(), mine.keys() - theirs.keys()
        assert not missing and not extra, \
            f"{what}: {table}: {len(missing)} rows missing, {len(extra)} extra"
        differing = [k for k in theirs if mine[k] != theirs[k]]
        assert not differing, f"{what}: {table}: row {differing[0]} differs: " \
                              f"{mine[differing[0]]} != {theirs[differing[0]]}"


def publish_until(publisher: Publisher, ledger: Ledger, stop: int, page: int) -> None:
    """Publish the store's log up to position `stop`, `page` events a transaction."""
    while publisher.position < stop:
        notes = ledger.recorder.select_notifications(
            start=publisher.position, limit=min(page, stop - publisher.position),
            inclusive_of_start=False)
        if not notes:
            break
        publisher._publish_page(notes)


def run(url: str, bootstrap: str, topic: str, group: str, batch: int) -> None:
    stats = run_projections(url=url, bootstrap=bootstrap, topic=topic, group=group,
                            batch=batch)
    assert stats.dead_lettered == 0


# -- (a) incremental equals rebuilt -----------------------------------------------------
# No shrinking: each example runs the broker four times, and a failure already prints
# its (short) history.
FAST = settings(max_examples=10, deadline=None,
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FAST
@given(history=histories(), cuts=st.lists(st.floats(0, 1), min_size=2, max_size=2),
       batch=st.integers(5, 60), page=st.integers(1, 40))
def test_projections_built_incrementally_equal_those_rebuilt_from_offset_zero(
        tmp_path: Path, kafka_bootstrap: str, fresh_topic: Any,
        history: list[dict[str, Any]], cuts: list[float], batch: int, page: int) -> None:
    n = next(_files)
    ledger = Ledger(f"sqlite:///{tmp_path}/events{n}.sqlite", clock=counting_clock())
    ingest(ledger, lines(history))
    records = all_records(ledger)
    total = records[-1]["position"]
    topic = fresh_topic(partitions=3)
    publisher = Publisher(ledger, kafka_bootstrap, topic, page=page)
    incremental = f"sqlite:///{tmp_path}/incremental{n}.sqlite"
    rebuilt = f"sqlite:///{tmp_path}/rebuilt{n}.sqlite"
    stops = [*sorted(int(c * total) for c in cuts), total]
    try:
        # The first part, caught up; then the rest in two more parts, each followed by a
        # restarted runner that resumes from the offsets stored with its rows.
        for stop in stops[:-1]:
            publish_until(publisher, ledger, stop, page)
            run(incremental, kafka_bootstrap, topic, "incremental", batch)
        publish_until(publisher, ledger, total, page)
    finally:
        publisher.close()
    # The last incremental run and the rebuild from offset 0 (another group, a fresh
    # database, one big batch) side by side.
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(run, incremental, kafka_bootstrap, topic, "incremental", batch),
                pool.submit(run, rebuilt, kafka_bootstrap, topic, "rebuild", 5000)]
        for done in runs:
            done.result()
    built = read_models(incremental)
    assert_same(built, read_models(rebuilt), "incremental vs rebuilt")
    assert_same(without_relay_marks(built), in_memory(records), "incremental vs in memory")


# -- one simulated history for (b) and (c) ----------------------------------------------
@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("projection-laws")
    simulate(establishments=120, months=1, seed=11, out=folder / "r.jsonl")
    url = f"sqlite:///{folder}/events.sqlite"
    with (folder / "r.jsonl").open("rb") as requests:
        ingest(Ledger(url, clock=counting_clock()), requests)
    return url, all_records(Ledger(url))


@pytest.fixture(scope="module")
def published(simulated: tuple[str, list[dict[str, Any]]], kafka_bootstrap: str,
              tmp_path_factory: pytest.TempPathFactory) -> str:
    """The simulated history on its own topic (module-scoped, so not `fresh_topic`)."""
    from consumers.topics import admin_client

    topic = f"test.projection-laws.{tmp_path_factory.getbasetemp().name}"
    admin = admin_client(kafka_bootstrap, client_id="sijil-test-topics")
    try:
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()
    publisher = Publisher(Ledger(simulated[0]), kafka_bootstrap, topic, page=500)
    try:
        assert publisher.publish_pending().published == len(simulated[1])
    finally:
        publisher.close()
    return topic


@pytest.fixture(scope="module")
def uninterrupted(published: str, kafka_bootstrap: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Tables:
    url = f"sqlite:///{tmp_path_factory.mktemp('uninterrupted')}/read.sqlite"
    run(url, kafka_bootstrap, published, "uninterrupted", 200)
    return read_models(url)


def test_the_read_models_on_postgresql_equal_those_on_sqlite(
        simulated: tuple[str, list[dict[str, Any]]], published: str, kafka_bootstrap: str,
        uninterrupted: Tables, fresh_pg_url: str) -> None:
    run(fresh_pg_url, kafka_bootstrap, published, "postgres", 700)
    on_postgres = read_models(fresh_pg_url)
    assert_same(on_postgres, uninterrupted, "PostgreSQL vs SQLite")
    assert_same(without_relay_marks(on_postgres), in_memory(simulated[1]),
                "PostgreSQL vs in memory")
    assert sum(len(rows) for rows in on_postgres.values()) > len(simulated[1]) // 2


# -- (c) SIGKILL mid-batch --------------------------------------------------------------
def _spawn(url: str, bootstrap: str, topic: str, group: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(SCRIPT), url, bootstrap, topic, group,
                             "--batch", "200", "--linger", "0.3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stored_offsets(url: str, group: str) -> int:
    from sqlalchemy import text

    engine = projections_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COALESCE(SUM(next_offset), 0) FROM "
                                         "consumer_offsets WHERE group_id = :g"),
                                    {"g": group}).scalar_one())
    finally:
        engine.dispose()


def test_a_runner_killed_mid_batch_and_restarted_builds_what_an_uninterrupted_one_does(
        simulated: tuple[str, list[dict[str, Any]]], published: str, kafka_bootstrap: str,
        uninterrupted: Tables, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/read.sqlite"
    rng, kills, progress = random.Random(17), 0, []
    for _ in range(4):
        process = _spawn(url, kafka_bootstrap, published, "killed")
        assert process.stdout is not None
        wanted, seen = rng.randint(1, 2), 0
        while seen < wanted:  # into its `wanted`-th batch, rows written, not committed
            line = process.stdout.readline()
            if not line:
                break
            seen += line.startswith(b"batch ")
        if seen == wanted:
            time.sleep(rng.uniform(0.0, 0.25))
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
        progress.append(_stored_offsets(url, "killed"))
    assert kills >= 3, f"only {kills} kills landed: the history is too short"
    assert progress == sorted(progress) and progress[-1] > 0
    final = _spawn(url, kafka_bootstrap, published, "killed")
    output = final.communicate(timeout=120)[0].decode()
    assert final.returncode == 0, output[-2000:]
    assert output.splitlines()[-1].endswith(" 0"), "dead letters: " + output[-500:]
    built = read_models(url)
    assert_same(built, uninterrupted, "killed and restarted vs uninterrupted")
    assert_same(without_relay_marks(built), in_memory(simulated[1]),
                "killed and restarted vs in memory")
