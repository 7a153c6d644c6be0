"""`sijil rebuild`: projections rebuilt from offset 0 into shadow tables and swapped in,
correct beside the live runner (replay/rebuild.py; invariant 5 of DESIGN.md).

(a) a corrupted projection, rebuilt — the topic having grown since the runner last ran —
    equals the same projection built by a clean full run, the others are untouched, and
    the runner resumed afterwards applies every later event exactly once: everything
    equals a clean full run into a fresh database (SQLite and PostgreSQL);
(b) until the swap, readers see the old tables;
(c) with the runner following the topic throughout — ahead of the rebuild at the swap,
    its cache holding rows of the old tables — the end state equals a clean full run.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from consumers.offsets import member_group
from consumers.projecting import run_projections
from consumers.publisher import Publisher
from domain.ingest import ingest
from domain.ledger import Ledger
from projections.catalog import ALL
from projections.database import projections_engine
from projections.reading import table_rows
from projections.rows import Key, Row
from replay.rebuild import Rebuild, rebuild_projections, rebuild_set
from simulator import simulate
from tests.test_ledger_properties import counting_clock

Tables = dict[str, dict[Key, Row]]
RELAY_MARKS = {("nitaqat_alerts", "published")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("rebuild")
    simulate(establishments=50, months=2, seed=31, out=folder / "r.jsonl")
    url = f"sqlite:///{folder}/events.sqlite"
    with (folder / "r.jsonl").open("rb") as lines:
        ingest(Ledger(url, clock=counting_clock()), lines)
    return url


class Parts:
    """The store's log published in three parts, as a test asks for them."""

    def __init__(self, store: str, bootstrap: str, topic: str) -> None:
        self.ledger = Ledger(store)
        self.total = self.ledger.recorder.max_notification_id() or 0
        self.publisher = Publisher(self.ledger, bootstrap, topic, page=300)
        self.stops = [self.total * 2 // 5, self.total * 7 // 10, self.total]

    def publish(self, part: int) -> None:
        stop = self.stops[part]
        while self.publisher.position < stop:
            notes = self.ledger.recorder.select_notifications(
                start=self.publisher.position, limit=min(300, stop - self.publisher.position),
                inclusive_of_start=False)
            if not notes:
                break
            self.publisher._publish_page(notes)

    def close(self) -> None:
        self.publisher.close()


@pytest.fixture
def parts(store: str, kafka_bootstrap: str, fresh_topic: Any) -> Iterator[tuple[Parts, str]]:
    topic = fresh_topic(partitions=3)
    published = Parts(store, kafka_bootstrap, topic)
    try:
        yield published, topic
    finally:
        published.close()


def read_models(url: str) -> Tables:
    engine = projections_engine(url)
    try:
        return table_rows(engine, ALL)
    finally:
        engine.dispose()


def without_relay_marks(tables: Tables) -> Tables:
    return {name: {k: {c: v for c, v in row.items() if (name, c) not in RELAY_MARKS}
                   for k, row in rows.items()} for name, rows in tables.items()}


def tables_of(names: list[str]) -> set[str]:
    return {t.name for p in ALL if p.name in names for t in p.tables}


def assert_same(built: Tables, expected: Tables, what: str,
                only: set[str] | None = None) -> None:
    for table in sorted(only if only is not None else expected):
        mine, theirs = built[table], expected[table]
        missing, extra = theirs.keys() - mine.keys(), mine.keys() - theirs.keys()
        assert not missing and not extra, \
            f"{what}: {table}: {len(missing)} rows missing, {len(extra)} extra"
        differing = [k for k in theirs if mine[k] != theirs[k]]
        assert not differing, f"{what}: {table}: row {differing[0]} differs: " \
                              f"{mine[differing[0]]} != {theirs[differing[0]]}"


def project(url: str, bootstrap: str, topic: str, group: str) -> None:
    stats = run_projections(url=url, bootstrap=bootstrap, topic=topic, group=group, batch=250)
    assert stats.dead_lettered == 0


def clean(tmp_path: Path, bootstrap: str, topic: str, label: str) -> Tables:
    """Every projection built by one full run into a fresh database."""
    url = f"sqlite:///{tmp_path}/clean-{label}.sqlite"
    project(url, bootstrap, topic, f"clean-{label}")
    return read_models(url)


def corrupt_establishments(url: str) -> None:
    """Rows lost, counts wrong: what a bad migration or a hand edit leaves."""
    engine = projections_engine(url)
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT establishment_id FROM establishments ORDER BY establishment_id"))]
        assert len(ids) > 10
        conn.execute(text("DELETE FROM establishments WHERE establishment_id IN "
                          "(:a, :b, :c)"), {"a": ids[1], "b": ids[4], "c": ids[7]})
        conn.execute(text("UPDATE establishments SET refusals = refusals + 100, "
                          "saudis = saudis + 3"))
        conn.execute(text("DELETE FROM band_history WHERE establishment_id = :a"),
                     {"a": ids[2]})
    engine.dispose()


def member_offsets_of(url: str, group: str, names: list[str]) -> dict[str, list[Any]]:
    engine = projections_engine(url)
    with engine.connect() as conn:
        out = {name: conn.execute(text(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = :g "
            "ORDER BY topic, partition"), {"g": member_group(group, name)}).all()
            for name in names}
    engine.dispose()
    return out


# -- (a) ------------------------------------------------------------------------------
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
def test_a_rebuilt_projection_equals_a_clean_build_and_the_runner_goes_on_exactly_once(
        database: str, request: pytest.FixtureRequest, parts: tuple[Parts, str],
        kafka_bootstrap: str, tmp_path: Path) -> None:
    url = (f"sqlite:///{tmp_path}/read.sqlite" if database == "sqlite"
           else str(request.getfixturevalue("fresh_pg_url")))
    published, topic = parts
    published.publish(0)
    project(url, kafka_bootstrap, topic, "live")
    corrupt_establishments(url)
    published.publish(1)  # the topic grows while the runner is stopped
    before = read_models(url)
    rebuilt_names = [p.name for p in rebuild_set(["establishments"])]
    assert rebuilt_names == ["establishments", "nitaqat_alerts"]
    others = [p.name for p in ALL if p.name not in rebuilt_names]
    offsets_before = member_offsets_of(url, "live", others)

    report = rebuild_projections(url=url, bootstrap=kafka_bootstrap, topic=topic,
                                 names=["establishments"], group="live", batch=400)

    assert report.projections == ("establishments", "nitaqat_alerts")
    assert report.failed == report.undecodable == 0
    assert report.folded == published.stops[1]
    after = read_models(url)
    # The rebuilt projections equal a clean full run over the same topic; the alerts of
    # the part the runner has not seen are not relayed yet.
    reference = clean(tmp_path, kafka_bootstrap, topic, "two-parts")
    assert_same(without_relay_marks(after), without_relay_marks(reference),
                "rebuilt vs clean", tables_of(rebuilt_names))
    # The others are untouched: their rows and their offsets.
    assert_same(after, before, "untouched", tables_of(others))
    assert member_offsets_of(url, "live", others) == offsets_before
    # The rebuilt ones stand ahead of the runner's, at the end of what was published.
    ahead = member_offsets_of(url, "live", rebuilt_names)
    assert ahead["establishments"] == ahead["nitaqat_alerts"]
    assert sum(o for _, _, o in ahead["establishments"]) > \
        sum(o for _, _, o in offsets_before["workers"])

    published.publish(2)
    project(url, kafka_bootstrap, topic, "live")
    assert_same(read_models(url), clean(tmp_path, kafka_bootstrap, topic, "all"),
                "rebuilt, then the runner resumed vs a clean full run")


@pytest.mark.parametrize("processes", [1, 3])
def test_rebuild_all_from_a_fresh_database_then_the_runner(
        processes: int, parts: tuple[Parts, str], kafka_bootstrap: str,
        tmp_path: Path) -> None:
    """No runner has run yet: the rebuild is the first build (in one process, or its
    independent parts in three), the runner then goes on."""
    published, topic = parts
    published.publish(0)
    url = f"sqlite:///{tmp_path}/read.sqlite"
    report = rebuild_projections(url=url, bootstrap=kafka_bootstrap, topic=topic,
                                 names=[p.name for p in ALL], group="live",
                                 processes=processes)
    assert report.projections == tuple(p.name for p in ALL)
    published.publish(1)
    published.publish(2)
    project(url, kafka_bootstrap, topic, "live")
    assert_same(read_models(url), clean(tmp_path, kafka_bootstrap, topic, "all"),
                "rebuilt from nothing, then the runner vs a clean full run")


# -- (b) ------------------------------------------------------------------------------
@pytest.mark.parametrize("processes", [1, 2])
def test_a_rebuild_reads_past_each_end_until_the_topic_is_complete(
        processes: int, parts: tuple[Parts, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    """While a publisher still writes the topic (bench.scale --overlap), reaching its end
    is not the end of the build: it goes on until told the topic is complete."""
    published, topic = parts
    published.publish(0)
    url = f"sqlite:///{tmp_path}/following.sqlite"
    rebuild = Rebuild(url=url, bootstrap=kafka_bootstrap, topic=topic,
                      names=[p.name for p in ALL], batch=400, processes=processes)
    complete = multiprocessing.get_context("spawn").Event()
    rebuild.prepare()
    builder = threading.Thread(target=rebuild.build, kwargs={"complete": complete})
    builder.start()
    try:
        time.sleep(3)  # long enough to read the first part to its end, and idle there
        assert builder.is_alive(), "the build stopped at the end of the first part"
        published.publish(1)
        published.publish(2)
        complete.set()
        builder.join(timeout=120)
        assert not builder.is_alive()
        report = rebuild.swap()
    finally:
        complete.set()
        builder.join(timeout=120)
        rebuild.close()
    assert report.folded == published.total and report.failed == 0
    assert_same(without_relay_marks(read_models(url)),
                without_relay_marks(clean(tmp_path, kafka_bootstrap, topic, "complete")),
                "built while the topic was written vs a clean full run")


def test_readers_see_the_old_tables_until_the_swap(
        parts: tuple[Parts, str], kafka_bootstrap: str, tmp_path: Path) -> None:
    published, topic = parts
    published.publish(0)
    url = f"sqlite:///{tmp_path}/read.sqlite"
    project(url, kafka_bootstrap, topic, "live")
    corrupt_establishments(url)
    corrupted = read_models(url)
    rebuild = Rebuild(url=url, bootstrap=kafka_bootstrap, topic=topic,
                      names=["establishments"], group="live", batch=300)
    try:
        rebuild.prepare()
        rebuild.build()
        # Built, not swapped: the shadows hold the rebuilt rows, readers the old ones.
        assert_same(read_models(url), corrupted, "before the swap", tables_of(
            ["establishments", "nitaqat_alerts"]))
        reader = sqlite3.connect(tmp_path / "read.sqlite", isolation_level=None)
        count = "SELECT COUNT(*) FROM establishments"
        shadows = reader.execute("SELECT COUNT(*) FROM establishments__shadow").fetchone()
        reader.execute("BEGIN")  # a reader's transaction, open across the swap
        old = reader.execute(count).fetchone()
        rebuild.swap()
        assert reader.execute(count).fetchone() == old
        reader.execute("ROLLBACK")
        assert reader.execute(count).fetchone() == shadows == (old[0] + 3,)
        reader.close()
    finally:
        rebuild.close()
    reference = clean(tmp_path, kafka_bootstrap, topic, "one-part")
    assert_same(read_models(url), reference, "after the swap",
                tables_of(["establishments", "nitaqat_alerts"]))


# -- (c) ------------------------------------------------------------------------------
class Following:
    """The live runner following the topic in a thread."""

    def __init__(self, url: str, bootstrap: str, topic: str, group: str) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(url, bootstrap, topic, group))
        self.thread.start()

    def _run(self, url: str, bootstrap: str, topic: str, group: str) -> None:
        try:
            stats = run_projections(url=url, bootstrap=bootstrap, topic=topic, group=group,
                                    stop=self.stop, follow=True, batch=200)
            assert stats.dead_lettered == 0
        except BaseException as error:  # reported by the test
            self.error = error

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def wait_until_equal(url: str, expected: Tables, tables: set[str], what: str,
                     timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    wanted = without_relay_marks(expected)
    while True:
        built = without_relay_marks(read_models(url))
        if all(built[t] == wanted[t] for t in tables):
            return
        if time.monotonic() > deadline:
            assert_same(built, wanted, f"{what} (timed out)", tables)
        time.sleep(0.3)


@pytest.mark.parametrize(("database", "processes"), [
    ("sqlite", 1), ("sqlite", 2), pytest.param("postgres", 1, marks=pytest.mark.postgres)])
def test_a_rebuild_beside_the_following_runner(
        database: str, processes: int, request: pytest.FixtureRequest,
        parts: tuple[Parts, str], kafka_bootstrap: str, tmp_path: Path) -> None:
    url = (f"sqlite:///{tmp_path}/read.sqlite" if database == "sqlite"
           else str(request.getfixturevalue("fresh_pg_url")))
    published, topic = parts
    published.publish(0)
    project(url, kafka_bootstrap, topic, "live")
    corrupt_establishments(url)  # the runner will cache corrupted rows
    runner = Following(url, kafka_bootstrap, topic, "live")
    # In two processes: two independent parts, each caught up from its own cut.
    names = ["establishments"] if processes == 1 else ["establishments", "statistics"]
    rebuild = Rebuild(url=url, bootstrap=kafka_bootstrap, topic=topic, names=names,
                      group="live", batch=300, processes=processes)
    try:
        rebuild.prepare()
        rebuild.build()
        # The runner goes further than the rebuild has read, folding the second part
        # over corrupted rows it caches.
        published.publish(1)
        two_parts = clean(tmp_path, kafka_bootstrap, topic, "two-parts")
        wait_until_equal(url, two_parts, {"trail"}, "the runner through part two")
        report = rebuild.swap()
    finally:
        rebuild.close()
    assert report.caught_up > 0, "the swap had to reach the runner"
    published.publish(2)
    everything = clean(tmp_path, kafka_bootstrap, topic, "all")
    try:
        wait_until_equal(url, everything, set(everything), "following runner, rebuilt")
    finally:
        runner.finish()
    assert_same(read_models(url), everything, "rebuilt beside the runner vs a clean run")


# -- the command ----------------------------------------------------------------------
def test_the_rebuild_command(parts: tuple[Parts, str], kafka_bootstrap: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from portal.rebuild_cli import rebuild_command

    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("rebuild")(rebuild_command)
    published, topic = parts
    published.publish(0)
    url = f"sqlite:///{tmp_path}/read.sqlite"
    project(url, kafka_bootstrap, topic, "sijil-projections")
    corrupt_establishments(url)
    for name, value in {"SIJIL_HOME": str(tmp_path), "SIJIL_PROJECTIONS_URL": url,
                        "SIJIL_KAFKA_BOOTSTRAP": kafka_bootstrap,
                        "SIJIL_EVENTS_TOPIC": topic}.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    assert runner.invoke(app, ["rebuild"]).exit_code == 2
    assert runner.invoke(app, ["rebuild", "nothing"]).exit_code == 2
    assert runner.invoke(app, ["rebuild", "workers", "--all"]).exit_code == 2
    result = runner.invoke(app, ["rebuild", "establishments"])
    assert result.exit_code == 0, result.output
    assert "also rebuilding nitaqat_alerts" in result.output
    assert "establishments" in result.output and "band_history" in result.output
    assert_same(read_models(url), clean(tmp_path, kafka_bootstrap, topic, "one-part"),
                "after `sijil rebuild establishments`")


# -- the benchmark still runs ---------------------------------------------------------
def test_the_projections_benchmark_runs(kafka_bootstrap: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny, on the session's broker; only that it works and writes its figures."""
    import orjson
    from typer.testing import CliRunner

    from bench import projections as bench

    monkeypatch.setenv("SIJIL_KAFKA_BOOTSTRAP", kafka_bootstrap)
    out = tmp_path / "projections.json"
    result = CliRunner().invoke(bench.app, ["--events", "3000", "--partitions", "3",
                                            "--no-profile", "--processes", "2",
                                            "--cache", str(tmp_path / "c"),
                                            "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    figures = orjson.loads(out.read_bytes())
    for key in ("date", "machine", "command"):
        assert figures[key]
    assert figures["events"] >= 3000
    results = figures["results"]
    assert results["rebuild"]["events_per_s"] > 0 and results["raw_consume"]["events_per_s"] > 0
    assert figures["ratio"] > 0 and results["rebuild"]["peak_rss_mib"] > 0
    assert results["rebuild_2_processes"]["rows"] == results["rebuild"]["rows"]
    assert results["rebuild"]["rows"]["trail"] > 0
