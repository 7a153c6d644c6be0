"""The whole pipeline at a fraction of the ministry's volume, with its baselines.

    python -m bench.scale --scale F [--seed 20250601] [--processes 2] [--work DIR]
                          [--profile STAGE ...] [--out FILE] [--results-md FILE]
                          [--overlap] [--keep] [--resume]

F = 1.0 is the ministry's ten months: about 18 million requests (DESIGN.md, seed 002).
The simulator (simulator/) makes every service the ministry counted in seed 002's
proportions to permit renewals, plus what a real portal also records (logins, wage
files, the passports feed) and a bootstrap of the establishments' existing workforce;
the number of establishments is chosen so that the ten months hold F x 18 million
requests (REQUESTS_PER_ESTABLISHMENT, measured), and the results file keeps every
service's simulated count beside F x seed 002's.

The stages, each in a fresh process so that its peak memory is its own, each with a
progress bar and its figures (wall time, rate, peak RSS, CPU seconds, bytes on disk):

1. simulate: the requests (JSON Lines) and the leak campaigns' labels;
2. ingest: every request decided and recorded (domain.ingest, SQLite store);
3. publish: the store's log onto a fresh events topic, exactly once (consumers.publisher);
4. project: every projection rebuilt from offset 0 (replay.rebuild, `--processes`);
   (the requests file is removed once ingested: no later stage reads it, and at F = 1.0
   it takes 11 GB of the disk the rest needs);
5. queries: `audit_credential` for each campaign's victim and accounts picked at random
   (p50, p99, max), with the live detector's verdicts from the read models the project
   stage built and again with the detector replayed over each account's history (which
   of the two goes first alternates, as the first pays for reading a cold store); and
   the as-of replay of the establishment with the most events, at the middle and at the
   end of the history.

The baselines, measured in the same run, each beside the stage it gives a meaning to:
the eventsourcing library's raw batched save (bench.ingest.raw_save) for ingest;
kafka-python's raw produce of the same encoded records (idempotent, no transactions)
for publish; kafka-python's raw consume of the whole events topic (read_committed, CRC
checks on) and a plain SQL bulk insert (sqlite3 executemany) for project. A baseline
runs on at most `--baseline-limit` items: its rate, not its total, is what is compared.

`--overlap` runs ingest, publish and project at once instead, as the ministry runs them
(bench/overlap.py): each part timed from the common start to its own end, the pipeline's
figure the wall time of the three together, and no ratio to a baseline (no stage ran
alone); its results go to scale-F-overlapped.json and its table row says "overlapped".

`--profile STAGE` (simulate, ingest, publish, project, queries; repeatable) runs that
stage under cProfile and keeps its top functions by own time in the results. Results go
to bench/results/scale-F.json after every stage (a run that dies keeps what it
measured), and the table of bench/RESULTS.md is rewritten from every scale-*.json there.
Kafka: SIJIL_KAFKA_BOOTSTRAP if set, else a throwaway local broker in the work folder.

`--resume` goes on with a run that stopped (its results file `--out` and its folder
`--work`, which a stopped run keeps): the stages with figures are not run again, the one
it stopped in starts again from its beginning (an ingest on an empty store, a publish
into a new topic, a rebuild into a new read-models file), and the results file records
each resumption (`resumed`: when the run had stopped, its command, the commit resumed
at). At F = 1.0 the stages one after another take longer than a working session.
"""

from __future__ import annotations

import contextlib
import cProfile
import math
import multiprocessing
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from bench.audit import _quantile
from bench.common import RESULTS, console, print_table, progress, rate, write_results
from bench.kafka_log import broker, new_topic
from bench.projections import cpu_seconds, peak_rss_mib

SEED = 20250601
MONTHS = 10
MINISTRY_REQUESTS = 18_000_000  # ten months of the ministry (seed 002; the mission)
# Requests a simulated establishment makes in ten months, its bootstrap included
# (measured: 2,000 establishments, seed 7 -> 180,224 requests).
REQUESTS_PER_ESTABLISHMENT = 90.1
# Permit renewals a simulated establishment makes in ten months (the same run: 22,437):
# `--match services` sizes the run so that renewals, and with them every counted
# service, are F x seed 002's; the bootstrap and the feeds then make it about 4.7 times
# the requests of `--match requests`.
RENEWALS_PER_ESTABLISHMENT = 11.2
LEAKS_PER_UNIT = 300  # leak campaigns at F = 1.0 (at least 2 at any scale)
STAGES = ("simulate", "ingest", "publish", "project", "queries")
CACHE = Path(__file__).resolve().parent / ".cache"
RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
TOP = 20
# Targets of issue 6, on this 2-core machine.
PIPELINE_MINUTES_AT_FULL_SCALE = 30
RATIO_AIM = 0.60
FLAT = 1.10  # memory counts as flat when its second half peaks within 10 % of its first
# The stages that stream the history (the simulator holds its population by design, the
# queries hold one account or establishment at a time).
STREAMING = ("ingest", "publish", "project")
AUDIT_P99_S = 0.200
AS_OF_S = 1.0

app = typer.Typer(add_completion=False)


# -- the machinery: stages in child processes ---------------------------------------------
class RssSampler(threading.Thread):
    """The stage's resident memory (its process and all their children) once a second:
    a peak says how much, the samples say whether it keeps growing with the history."""

    def __init__(self, every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self.done = threading.Event()

    def run(self) -> None:
        started = time.perf_counter()
        while not self.done.wait(self.every_s):
            self.samples.append((time.perf_counter() - started, tree_rss_mib(os.getpid())))

    def by_tenth(self) -> list[float]:
        """The largest sample in each tenth of the stage's time, in MiB."""
        self.done.set()
        if not self.samples:
            return []
        end = self.samples[-1][0] or 1.0
        tenths = [0.0] * 10
        for at, rss in self.samples:
            slot = min(9, int(10 * at / end))
            tenths[slot] = max(tenths[slot], rss)
        return [round(t, 1) for t in tenths]


def tree_rss_mib(pid: int) -> float:
    """VmRSS of a process and its descendants, from /proc (Linux)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total / 1024


def _child(function: Callable[..., dict[str, Any]], profile: bool, *args: Any
           ) -> dict[str, Any]:
    """Runs in the child: the stage, its time, peak memory and CPU, and its profile."""
    profiler = cProfile.Profile() if profile else None
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    figures = function(*args)
    if profiler:
        profiler.disable()
    figures.setdefault("seconds", time.perf_counter() - started)
    figures["rss_mib_by_tenth"] = sampler.by_tenth()
    figures["peak_rss_mib"] = round(peak_rss_mib(), 1)
    figures["peak_rss_children_mib"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    figures["cpu_seconds"] = round(cpu_seconds(), 1)
    if profiler:
        from bench.projections import top_tottime

        text, rows = top_tottime(profiler, TOP)
        figures["profile_top"] = rows
        console.print(text, highlight=False)
    return figures


def in_child(function: Callable[..., dict[str, Any]], *args: Any, profile: bool = False
             ) -> dict[str, Any]:
    """A fresh (spawned) process: its peak memory is the stage's alone. Not a daemon:
    a rebuild with --processes starts children of its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result: dict[str, Any] = pool.submit(_child, function, profile, *args).result()
    return result


def file_bytes(*paths: Path) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def sqlite_bytes(path: Path) -> int:
    """A SQLite database with its write-ahead log."""
    return file_bytes(path, Path(f"{path}-wal"), Path(f"{path}-shm"))


def mib(count: int) -> float:
    return round(count / 2**20, 1)


# -- 1. simulate --------------------------------------------------------------------------
def establishments_for(scale: float, match: str = "requests") -> int:
    if match == "services":
        from simulator.figures import SERVICE_COUNTS

        renewals = SERVICE_COUNTS["permit.renew"]
        return max(20, round(scale * renewals / RENEWALS_PER_ESTABLISHMENT))
    return max(20, round(scale * MINISTRY_REQUESTS / REQUESTS_PER_ESTABLISHMENT))


def leaks_for(scale: float) -> int:
    return max(2, round(scale * LEAKS_PER_UNIT))


def simulate_stage(work: str, establishments: int, leaks: int, seed: int) -> dict[str, Any]:
    from simulator import simulate

    folder = Path(work)
    expected = round(establishments * REQUESTS_PER_ESTABLISHMENT)
    with progress() as bar:
        task = bar.add_task("simulate (requests)", total=expected)
        summary = simulate(establishments=establishments, months=MONTHS, seed=seed,
                           leaks=leaks, out=folder / "requests.jsonl",
                           labels=folder / "labels.jsonl", plan=folder / "plan.json",
                           progress=lambda n: bar.update(task, completed=n, total=max(
                               n, expected)))
    return {"requests": summary.requests, "establishments": summary.establishments,
            "workers": summary.workers, "accounts": summary.accounts,
            "campaigns": summary.campaigns, "services": summary.services,
            "first_occurred_at": summary.first_occurred_at,
            "last_occurred_at": summary.last_occurred_at,
            "requests_file_mib": mib(file_bytes(folder / "requests.jsonl"))}


def against_seed_002(services: dict[str, int], scale: float) -> dict[str, dict[str, Any]]:
    """Each counted service's simulated count beside F x seed 002's (the simulator's
    copy of the figures, checked against shared/data by tests/test_simulator.py)."""
    from simulator.figures import SERVICE_COUNTS

    out = {}
    for code, count in SERVICE_COUNTS.items():
        wanted = count * scale
        got = services.get(code, 0)
        out[code] = {"simulated": got, "seed_002_times_f": round(wanted),
                     "ratio": round(got / wanted, 2) if wanted else None}
    return out


# -- 2. ingest ------------------------------------------------------------------------------
def ingest_stage(work: str, url: str, requests: int) -> dict[str, Any]:
    with progress() as bar:
        task = bar.add_task("ingest (requests)", total=requests)
        return ingest_requests(work, url, lambda n: bar.update(task, completed=n))


def ingest_requests(work: str, url: str, done: Callable[[int], None]) -> dict[str, Any]:
    """The requests file into the store, `done` told how many requests so far."""
    from domain.ingest import ingest
    from domain.ledger import Ledger
    from domain.settings import Settings

    batch = Settings().ingest_batch_size
    ledger = Ledger(url)
    started = time.perf_counter()
    with (Path(work) / "requests.jsonl").open("rb") as lines:
        report = ingest(ledger, lines, batch_size=batch, progress=done)
    seconds = time.perf_counter() - started
    streams = ledger_streams(url)
    return {"seconds": seconds, "requests": report.decided, "events": report.events,
            "accepted": sum(report.accepted.values()),
            "refused": sum(report.refused.values()), "malformed": len(report.malformed),
            "batch_size": batch, "streams": streams,
            "requests_per_s": rate(report.decided, seconds),
            "events_per_s": rate(report.events, seconds),
            "store_mib": mib(sqlite_bytes(Path(work) / "events.sqlite"))}


def ledger_streams(url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from domain.persistence import EVENT_INDEX

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count(func.distinct(
                EVENT_INDEX.c.stream)))).scalar() or 0)
    finally:
        engine.dispose()


def raw_save_stage(work: str, events: int, transactions: int, streams: int
                   ) -> dict[str, Any]:
    """The library alone: the same number of events over as many streams in as many
    transactions as ingest used (scaled down to at most the baseline limit)."""
    from bench.ingest import raw_save

    url = f"sqlite:///{Path(work) / 'raw-save.sqlite'}"
    with progress() as bar:
        task = bar.add_task("baseline: raw eventsourcing save (events)", total=events)
        seconds = raw_save(url, events, transactions, streams,
                           lambda n: bar.update(task, completed=n))
    for stale in Path(work).glob("raw-save.sqlite*"):
        stale.unlink()
    return {"seconds": seconds, "events": events, "transactions": transactions,
            "streams": streams, "events_per_s": rate(events, seconds)}


# -- 3. publish -----------------------------------------------------------------------------
def publish_stage(url: str, bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    from consumers.publisher import Publisher
    from domain.ledger import Ledger

    publisher = Publisher(Ledger(url), bootstrap, topic)  # init_transactions: untimed
    try:
        started = time.perf_counter()
        with progress() as bar:
            task = bar.add_task("publish (events)", total=events)
            report = publisher.publish_pending(lambda n: bar.update(task, completed=n))
        seconds = time.perf_counter() - started
    finally:
        publisher.close()
    return publish_figures(publisher, bootstrap, topic, report.published, seconds)


def publish_figures(publisher: Any, bootstrap: str, topic: str, published: int,
                    seconds: float) -> dict[str, Any]:
    from consumers.topics import topic_size_bytes
    from domain.settings import Settings

    return {"seconds": seconds, "events": published,
            "events_per_s": rate(published, seconds), "page": publisher.page,
            "compression": Settings().kafka_compression,
            "topic_mib": mib(topic_size_bytes(bootstrap, topic))}


def raw_produce_stage(url: str, bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    """kafka-python alone: the publisher's own encoded records (a sample of the store,
    cycled), produced idempotently without transactions, with the publisher's
    compression codec (SIJIL_KAFKA_COMPRESSION), and flushed."""
    from bench.kafka_log import raw_produce
    from consumers.codec import encode
    from domain.ledger import Ledger

    ledger, start = Ledger(url), 0
    records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
    while len(records) < min(count, 100_000) and (notes := ledger.recorder.select_notifications(
            start=start, limit=5000, inclusive_of_start=False)):
        records += [encode(ledger.record_of(n)) for n in notes]
        start = notes[-1].id
    with console.status(f"baseline: raw produce of {count:,} records …"):
        seconds = raw_produce(bootstrap, topic, records, count)
    return {"seconds": seconds, "events": count, "events_per_s": rate(count, seconds),
            "distinct_records": len(records),
            "mean_value_bytes": round(statistics.mean(len(r[1]) for r in records))}


# -- 4. project -----------------------------------------------------------------------------
def raw_consume_stage(bootstrap: str, topic: str, batch: int, limit: int) -> dict[str, Any]:
    """kafka-python alone: the events topic from offset 0 (up to `limit` records)."""
    from bench.kafka_log import raw_consume

    with progress() as bar:
        task = bar.add_task("baseline: raw consume (records)", total=limit)
        seconds, count = raw_consume(bootstrap, topic, batch, limit,
                                     lambda n: bar.update(task, completed=min(n, limit)))
    return {"seconds": seconds, "events": count, "events_per_s": rate(count, seconds)}


def project_stage(work: str, bootstrap: str, topic: str, processes: int, batch: int
                  ) -> dict[str, Any]:
    started = time.perf_counter()
    rebuild = fresh_rebuild(work, bootstrap, topic, processes, batch)
    try:
        rebuild.prepare()
        with progress() as bar:
            task = bar.add_task(f"project: every projection from offset 0 "
                                f"({rebuild.processes} process(es), records)", total=None)
            rebuild.build(lambda done, total: bar.update(task, completed=done, total=total))
        built = time.perf_counter()
        with console.status("project: indexes and swap …"):
            report = rebuild.swap()
    finally:
        rebuild.close()
    return project_figures(work, rebuild.processes, report, started, built)


def fresh_rebuild(work: str, bootstrap: str, topic: str, processes: int, batch: int
                  ) -> Any:
    """Every projection, to be rebuilt into a new read-models file in `work`."""
    from projections.catalog import ALL
    from replay.rebuild import Rebuild

    for stale in Path(work).glob("projections.sqlite*"):
        stale.unlink()
    return Rebuild(url=f"sqlite:///{Path(work) / 'projections.sqlite'}",
                   bootstrap=bootstrap, topic=topic, names=[p.name for p in ALL],
                   batch=batch, processes=processes)


def project_figures(work: str, processes: int, report: Any, started: float, built: float
                    ) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    rows = sum(report.rows.values())
    return {"seconds": seconds, "build_seconds": built - started,
            "swap_seconds": seconds - (built - started), "events": report.folded,
            "records": report.records, "failed": report.failed,
            "undecodable": report.undecodable, "processes": processes,
            "rows": report.rows, "rows_total": rows, "rows_per_s": rate(rows, seconds),
            "events_per_s": rate(report.folded, seconds),
            "read_models_mib": mib(sqlite_bytes(Path(work) / "projections.sqlite"))}


def sql_insert_stage(work: str, rows: int) -> dict[str, Any]:
    """A plain SQL bulk insert: sqlite3's executemany of rows shaped like the read
    models' (a key and ten text columns, about 300 bytes), 5,000 a transaction."""
    path = Path(work) / "bulk-insert.sqlite"
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, " +
               ", ".join(f"c{i} TEXT" for i in range(10)) + ")")
    filler = ["x" * 28] * 10
    started = time.perf_counter()
    for begin in range(0, rows, 5000):
        with db:
            db.executemany("INSERT INTO t VALUES (?" + ", ?" * 10 + ")",
                           ([f"{i:012d}", *filler] for i in range(begin, min(rows,
                                                                        begin + 5000))))
    seconds = time.perf_counter() - started
    db.close()
    for stale in Path(work).glob("bulk-insert.sqlite*"):
        stale.unlink()
    return {"seconds": seconds, "rows": rows, "rows_per_s": rate(rows, seconds)}


# -- 5. queries -----------------------------------------------------------------------------
def queries_stage(work: str, url: str, accounts: int, seed: int) -> dict[str, Any]:
    models = f"sqlite:///{Path(work) / 'projections.sqlite'}"
    live, replayed = audit_figures(work, url, accounts, seed, models)
    return {"audit_credential": live, "audit_credential_replayed": replayed,
            "as_of": as_of_figures(url)}


def audit_accounts(url: str, work: str, count: int, seed: int) -> list[tuple[str, str]]:
    """Each campaign's victim since the leak, then accounts of events drawn at random
    (so busy accounts are drawn more often) since the middle of the history."""
    from sqlalchemy import create_engine, func, select

    from domain.persistence import EVENT_INDEX

    labels = [orjson.loads(line) for line in (Path(work) / "labels.jsonl").read_bytes()
              .splitlines() if line.strip()]
    victims = [(c["account_id"], c["leaked_at"]) for c in labels if c["type"] == "campaign"]
    idx = EVENT_INDEX.c
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            last = int(conn.execute(select(func.max(idx.position))).scalar() or 0)
            first_at, last_at = conn.execute(select(func.min(idx.occurred_at),
                                                    func.max(idx.occurred_at))).one()
            rng = random.Random(seed)
            drawn = rng.sample(range(1, last + 1), min(last, count * 5))
            picked: list[str] = []
            for begin in range(0, len(drawn), 500):
                picked += [r[0] for r in conn.execute(select(idx.account_id).where(
                    idx.position.in_(drawn[begin:begin + 500])))]
    finally:
        engine.dispose()
    people = list(dict.fromkeys(a for a in picked if not a.startswith(("sys:", "staff:"))))
    middle = midpoint(first_at, last_at)
    return victims + [(a, middle) for a in people[:max(0, count - len(victims))]]


def midpoint(first: str, last: str) -> str:
    from domain.context import iso, parse_iso

    a, b = parse_iso(first), parse_iso(last)
    return iso(a + (b - a) / 2)


class AuditTimes:
    """One way of answering the audits: its times and what each audit read."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.history: list[int] = []
        self.listed: list[int] = []
        self.sources: Counter[str] = Counter()
        self.requests_from: Counter[str] = Counter()

    def figures(self, jobs: list[tuple[str, str]]) -> dict[str, Any]:
        slowest = max(range(len(self.times)), key=self.times.__getitem__)
        return {"audits": len(jobs), "signals_from": dict(sorted(self.sources.items())),
                "requests_from": dict(sorted(self.requests_from.items())),
                "p50_s": statistics.median(self.times),
                "p99_s": _quantile(self.times, 0.99), "max_s": max(self.times),
                "slowest_account": jobs[slowest][0],
                "slowest_history_events": self.history[slowest],
                "max_requests_listed": max(self.listed),
                "max_history_events": max(self.history)}


def audit_figures(work: str, url: str, count: int, seed: int, models: str
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """`audit_credential` for each job twice: with the live detector's verdicts from the
    read models the project stage built, and with the detector replayed over the
    account's history. Which goes first alternates from job to job: the first to read an
    account's events from a store larger than the page cache pays for it."""
    from domain.ledger import Ledger
    from projections.fraud_verdicts import LiveVerdicts

    verdicts = LiveVerdicts.open(models)
    jobs = audit_accounts(url, work, count, seed)
    try:
        ways = time_audits(Ledger(url), jobs, {"live": verdicts, "replayed": None},
                           "queries: audit credential (live verdicts, replayed)")
    finally:
        if verdicts is not None:
            verdicts.close()
    return ways["live"].figures(jobs), ways["replayed"].figures(jobs)


def time_audits(ledger: Any, jobs: list[tuple[str, str]], ways: dict[str, Any],
                label: str) -> dict[str, AuditTimes]:
    """Each job answered once each way (`verdicts` for audit_credential: read models, or
    None), the ways' order turned at every job: the first to read an account's events
    from a store larger than the page cache pays for it."""
    from replay.credential_audit import audit_credential

    times = {way: AuditTimes() for way in ways}
    order = list(ways)
    with progress() as bar:
        task = bar.add_task(label, total=len(jobs))
        for n, (account, since) in enumerate(jobs):
            for way in order[n % len(order):] + order[:n % len(order)]:
                started = time.perf_counter()
                audit = audit_credential(ledger, account, since, verdicts=ways[way])
                t = times[way]
                t.times.append(time.perf_counter() - started)
                t.listed.append(len(audit.requests))
                t.history.append(audit.history_events)
                t.sources[audit.source] += 1
                t.requests_from[audit.requests_from] += 1
            bar.update(task, advance=1)
    return times


def largest_establishments(ledger: Any, count: int) -> list[tuple[str, int]]:
    """The `count` establishments with the most events of their own, with that count."""
    from sqlalchemy import func, select

    from domain.persistence import EVENT_INDEX

    idx = EVENT_INDEX.c
    with ledger.recorder.datastore.engine.connect() as conn:
        return [(str(n), int(c)) for n, c in conn.execute(
            select(idx.establishment_id, func.count()).where(idx.establishment_id.is_not(None))
            .group_by(idx.establishment_id).order_by(func.count().desc()).limit(count))]


def as_of_figures(url: str, repeats: int = 3) -> dict[str, Any]:
    """The establishment with the most events, as of the middle and the end."""
    from sqlalchemy import func, select

    from domain.ledger import Ledger
    from domain.persistence import EVENT_INDEX
    from replay.as_of import as_of
    from replay.history import Cutoff, from_store

    ledger = Ledger(url)
    idx = EVENT_INDEX.c
    engine = ledger.recorder.datastore.engine  # type: ignore[attr-defined]
    [(number, own)] = largest_establishments(ledger, 1)
    with engine.connect() as conn:
        first_at, last_at = conn.execute(
            select(func.min(idx.occurred_at), func.max(idx.occurred_at))
            .where(idx.establishment_id == number)).one()
    out: dict[str, Any] = {"establishment_id": number, "own_events": own}
    for label, cutoff in (("middle", Cutoff(time=midpoint(first_at, last_at))),
                          ("end", Cutoff())):
        times, replayed = [], 0
        for _ in range(repeats):
            started = time.perf_counter()
            state = as_of(number, from_store(ledger, number, cutoff))
            times.append(time.perf_counter() - started)
            replayed = state.events
        out[label] = {"as_of": cutoff.time, "events_replayed": replayed,
                      "median_s": statistics.median(times), "max_s": max(times)}
    return out


# -- the run --------------------------------------------------------------------------------
class Run:
    """One run's figures, written after every stage."""

    def __init__(self, scale: float, out: Path, figures: dict[str, Any]) -> None:
        self.scale, self.out, self.figures = scale, out, figures

    def stage(self, name: str, figures: dict[str, Any], group: str = "stages") -> None:
        self.figures.setdefault(group, {})[name] = figures
        show = {k: v for k, v in figures.items()
                if not isinstance(v, dict | list) and k != "profile_top"}
        print_table(f"{group[:-1]}: {name}", ["figure", "value"],
                    [(k, v) for k, v in show.items()])
        self.save()

    def has(self, name: str, group: str = "stages") -> bool:
        return name in self.figures.get(group, {})

    def once(self, name: str, measure: Callable[[], dict[str, Any]],
             group: str = "stages") -> None:
        """The stage measured unless it has its figures already (a resumed run)."""
        if not self.has(name, group):
            self.stage(name, measure(), group)

    def save(self) -> None:
        self.figures["ratios"] = ratios(self.figures)
        self.figures["targets"] = targets(self.figures, self.scale)
        write_results(f"scale-{self.scale:g}", self.figures, self.out)


def ratios(figures: dict[str, Any]) -> dict[str, float | None]:
    stages, base = figures.get("stages", {}), figures.get("baselines", {})

    def of(stage: str, baseline: str, key: str = "events_per_s") -> float | None:
        a, b = stages.get(stage, {}).get(key), base.get(baseline, {}).get(key)
        return round(a / b, 3) if a and b else None

    if figures.get("pipeline", {}).get("overlapped"):
        return {}  # no stage ran alone: none has a rate to set beside its baseline's
    return {"ingest_to_raw_save": of("ingest", "raw_save"),
            "publish_to_raw_produce": of("publish", "raw_produce"),
            "project_to_raw_consume": of("project", "raw_consume"),
            "project_rows_to_sql_insert": of("project", "sql_insert", "rows_per_s")}


def targets(figures: dict[str, Any], scale: float) -> dict[str, Any]:
    """Issue 6's targets; the 30-minute one extrapolated linearly from F to 1.0."""
    stages, got = figures.get("stages", {}), figures.get("ratios", {})
    pipeline = [stages.get(s, {}).get("seconds") for s in ("ingest", "publish", "project")]
    out: dict[str, Any] = {}
    if all(pipeline):
        overlapped = figures.get("pipeline", {}).get("seconds")
        seconds = float(overlapped or sum(pipeline))
        out["pipeline_seconds"] = round(seconds, 1)
        out["pipeline_minutes_at_full_scale_estimate"] = round(seconds / scale / 60, 1)
        out["pipeline_under_30_min"] = seconds / scale / 60 < PIPELINE_MINUTES_AT_FULL_SCALE
    for name, key in (("project_at_60pct_of_raw_consume", "project_to_raw_consume"),
                      ("publish_at_60pct_of_raw_produce", "publish_to_raw_produce")):
        if got.get(key) is not None:
            out[name] = got[key] >= RATIO_AIM
    sizes = [stages.get(s, {}).get(k) for s, k in (
        ("ingest", "store_mib"), ("publish", "topic_mib"), ("project", "read_models_mib"))]
    if all(sizes):  # what F = 1.0 would leave on disk, the requests file removed
        out["disk_gib_at_full_scale_estimate"] = round(sum(sizes) / scale / 1024, 1)
        free = figures.get("disk_free_gib_at_start")
        if free:
            out["fits_disk_at_full_scale"] = out["disk_gib_at_full_scale_estimate"] < free
    queries = stages.get("queries", {})
    if queries:
        out["audit_credential_p99_under_200ms"] = (queries["audit_credential"]["p99_s"]
                                                   < AUDIT_P99_S)
        out["as_of_largest_under_1s"] = all(queries["as_of"][k]["max_s"] < AS_OF_S
                                            for k in ("middle", "end"))
    streaming = {**{n: s for n, s in stages.items() if n in STREAMING},
                 **({"pipeline": figures["pipeline"]} if "pipeline" in figures else {})}
    growth = {name: g for name, stage in streaming.items()
              if (g := memory_growth(stage.get("rss_mib_by_tenth") or [])) is not None}
    if growth:
        out["rss_second_half_over_first_half"] = growth
        out["memory_flat"] = {name: g <= FLAT for name, g in growth.items()}
    return out


def memory_growth(tenths: list[float]) -> float | None:
    """The stage's peak memory in the second half of its time over the first half's:
    1.0 when it stopped growing by mid-stage, 2.0 when it grows with what it has read."""
    if len(tenths) < 10 or not max(tenths[:5]):
        return None
    return round(max(tenths[5:]) / max(tenths[:5]), 2)


def execute(scale: float, seed: int, processes: int, work: Path, profile: set[str],
            baseline_limit: int, accounts: int, out: Path, match: str = "requests",
            overlap: bool = False, resume: bool = False) -> dict[str, Any]:
    establishments, leaks = establishments_for(scale, match), leaks_for(scale)
    run = resumed_run(scale, out, work) if resume else fresh_run(
        scale, out, work, {"scale": scale, "match": match, "seed": seed, "months": MONTHS,
                           "establishments_asked": establishments, "leaks_asked": leaks})
    url = f"sqlite:///{work / 'events.sqlite'}"
    console.rule(f"scale {scale:g}: {establishments:,} establishments x {MONTHS} months, "
                 f"{leaks} leak campaigns")
    if not run.has("simulate"):
        sim = in_child(simulate_stage, str(work), establishments, leaks, seed,
                       profile="simulate" in profile)
        run.figures["services_against_seed_002"] = against_seed_002(sim.pop("services"),
                                                                    scale)
        run.stage("simulate", sim)
    with broker(work) as (bootstrap, what):
        run.figures["kafka"] = what
        topic = events_topic(run, bootstrap)
        if overlap:
            overlapped(run, work, url, bootstrap, topic,
                       run.figures["stages"]["simulate"]["requests"], processes)
        else:
            one_after_another(run, work, url, bootstrap, topic, profile, processes)
        kafka_baselines(run, url, bootstrap, topic, baseline_limit)
    store_baselines(run, work, baseline_limit)
    run.once("queries", lambda: in_child(queries_stage, str(work), url, accounts, seed,
                                         profile="queries" in profile))
    report(run.figures)
    return run.figures


def fresh_run(scale: float, out: Path, work: Path, asked: dict[str, Any]) -> Run:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return Run(scale, out, {**asked, "commit": source_commit(), "work": str(work),
                            "disk_free_gib_at_start": round(
                                shutil.disk_usage(work).free / 2**30, 1)})


def resumed_run(scale: float, out: Path, work: Path) -> Run:
    """A run that stopped (a session's end, a machine's restart) goes on from its first
    stage without figures: at F = 1.0 the stages one after another take longer than a
    working session. The stage it stopped in starts again from its beginning; what the
    earlier stages left (store, topic, broker folder) is kept."""
    if not out.is_file() or not work.is_dir():
        raise typer.BadParameter(f"--resume: needs the run's results file ({out}) and its "
                                 f"kept work folder ({work}); one is missing")
    figures: dict[str, Any] = orjson.loads(out.read_bytes())
    if figures.get("scale") != scale or figures.get("pipeline", {}).get("overlapped"):
        raise typer.BadParameter(f"--resume: {out} is not a one-stage-after-another run "
                                 f"at scale {scale:g}")
    if not figures.get("stages", {}).get("ingest"):
        restart_store(work)  # before a broker starts: a run that cannot go on says so
    before = {k: figures.pop(k, None) for k in ("date", "command", "machine", "python")}
    figures.setdefault("resumed", []).append(
        {**before, "commit_resumed_at": source_commit(),
         "stages_kept": sorted(figures.get("stages", {}))})
    return Run(scale, out, figures)


def events_topic(run: Run, bootstrap: str) -> str:
    """The published topic when the publish stage has its figures; a fresh one otherwise
    (a publish that stopped half-way is done again, exactly once, into a new topic)."""
    if run.has("publish"):
        return str(run.figures["topic"]["name"])
    partitions = int(os.environ.get("SIJIL_EVENTS_PARTITIONS", "6"))
    topic = new_topic(bootstrap, "scale", partitions)
    run.figures["topic"] = {"name": topic, "partitions": partitions}
    return topic


def kafka_baselines(run: Run, url: str, bootstrap: str, topic: str, limit: int) -> None:
    published = run.figures["stages"]["publish"]["events"]
    run.once("raw_produce", lambda: in_child(
        raw_produce_stage, url, bootstrap,
        new_topic(bootstrap, "scale-raw", run.figures["topic"]["partitions"]),
        min(published, limit)), "baselines")
    run.once("raw_consume", lambda: in_child(raw_consume_stage, bootstrap, topic, 5000,
                                             limit), "baselines")


def store_baselines(run: Run, work: Path, limit: int) -> None:
    done, projected = run.figures["stages"]["ingest"], run.figures["stages"]["project"]
    events = min(done["events"], limit)
    transactions = max(1, round(events / done["events"]
                                * math.ceil(done["requests"] / done["batch_size"])))
    streams = max(1, round(done["streams"] * events / done["events"]))
    run.once("raw_save", lambda: in_child(raw_save_stage, str(work), events, transactions,
                                          streams), "baselines")
    run.once("sql_insert", lambda: in_child(sql_insert_stage, str(work),
                                            min(projected["rows_total"], limit)),
             "baselines")


def one_after_another(run: Run, work: Path, url: str, bootstrap: str, topic: str,
                      profile: set[str], processes: int) -> None:
    """Ingest, publish and project, each alone: each rate then sets beside its
    baseline. A stage that has its figures (a resumed run) is not run again."""
    stages = run.figures["stages"]
    run.once("ingest", lambda: in_child(ingest_stage, str(work), url,
                                        stages["simulate"]["requests"],
                                        profile="ingest" in profile))
    drop_requests(work)
    run.once("publish", lambda: in_child(publish_stage, url, bootstrap, topic,
                                         stages["ingest"]["events"],
                                         profile="publish" in profile))
    run.once("project", lambda: in_child(project_stage, str(work), bootstrap, topic,
                                         processes, 5000, profile="project" in profile))


def restart_store(work: Path) -> None:
    """An ingest starts on an empty store: one that stopped half-way left rows that the
    requests would be decided against a second time."""
    if not (work / "requests.jsonl").is_file():
        raise typer.BadParameter(f"ingest: {work / 'requests.jsonl'} is gone (removed once "
                                 "ingested); this run cannot ingest again: start afresh")
    for stale in work.glob("events.sqlite*"):
        stale.unlink()


def overlapped(run: Run, work: Path, url: str, bootstrap: str, topic: str, requests: int,
               processes: int) -> None:
    """The three at once (bench/overlap.py): each part's figures under its stage's
    name, marked, and the pipeline's wall time."""
    from bench.overlap import pipeline_stage

    piped = in_child(pipeline_stage, str(work), url, bootstrap, topic, requests,
                     processes, 5000)
    drop_requests(work)
    run.figures["pipeline"] = {"seconds": piped["seconds"], "overlapped": True,
                               "cpu_seconds": piped["cpu_seconds"],
                               "peak_rss_mib": piped["peak_rss_mib"],
                               "peak_rss_children_mib": piped["peak_rss_children_mib"],
                               "rss_mib_by_tenth": piped["rss_mib_by_tenth"]}
    for name in ("ingest", "publish", "project"):
        run.stage(name, {**piped[name], "overlapped": True})


def drop_requests(work: Path) -> None:
    """The requests file, once ingested: no later stage reads it, and at F = 1.0 it is
    11 GB of a disk the store, the topic and the read models need (its size is in the
    simulate stage's figures)."""
    (work / "requests.jsonl").unlink(missing_ok=True)


def source_commit() -> str:
    """The code measured: HEAD, marked when the work tree differs from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (modified)' if dirty else ''}"


def report(figures: dict[str, Any]) -> None:
    stages, base = figures["stages"], figures.get("baselines", {})
    rows = []
    for name in ("simulate", "ingest", "publish", "project"):
        s = stages.get(name, {})
        count = s.get("events", s.get("requests"))
        rows.append((name, count, s.get("seconds"), rate(count or 0, s.get("seconds") or 0),
                     s.get("peak_rss_mib"), s.get("cpu_seconds")))
    for name, s in base.items():
        count = s.get("events", s.get("rows"))
        rows.append((f"baseline: {name}", count, s.get("seconds"),
                     rate(count or 0, s.get("seconds") or 0), s.get("peak_rss_mib"),
                     s.get("cpu_seconds")))
    print_table("the pipeline and its baselines", ["stage", "items", "seconds", "items/s",
                                                    "peak RSS MiB", "CPU s"], rows)
    print_table("ratios to the baselines", ["ratio", "value"],
                list(figures["ratios"].items()))
    print_table("targets (issue 6)", ["target", "value"], list(figures["targets"].items()))


# -- bench/RESULTS.md -----------------------------------------------------------------------
BEGIN, END = "<!-- scale-table:begin -->", "<!-- scale-table:end -->"


def results_table(folder: Path) -> str:
    """One row a scale, from every scale-*.json in `folder`."""
    runs = []
    for path in sorted(folder.glob("scale-*.json")):
        f = orjson.loads(path.read_bytes())
        if "stages" in f and "project" in f["stages"]:
            runs.append(f)
    lines = ["| F | requests | events | ingest req/s (÷ raw save) | publish ev/s (÷ raw "
             "produce) | project ev/s (÷ raw consume) | pipeline (est. at F = 1) | audit "
             "p99 | as-of (largest) | peak RSS (stage) | store / topic / read models | "
             "date, machine | command |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(runs, key=lambda r: r["scale"]):
        lines.append(results_row(f))
    return "\n".join(lines)


def results_row(f: dict[str, Any]) -> str:
    s, r, t = f["stages"], f["ratios"], f["targets"]
    q = s.get("queries", {})
    def rss(name: str) -> float:  # the stage's process or the biggest of its children
        stage = f["pipeline"] if name == "pipeline" else s.get(name, {})
        return float(max(stage.get("peak_rss_mib", 0), stage.get("peak_rss_children_mib", 0)))

    peak = max(("simulate", "ingest", "publish", "project", "queries",
                *(("pipeline",) if "pipeline" in f else ())), key=rss)
    m = f["machine"]
    audit = f"{q['audit_credential']['p99_s'] * 1000:,.0f} ms" if q else "—"
    if q and "audit_credential_replayed" in q:
        audit += f" (replayed: {q['audit_credential_replayed']['p99_s'] * 1000:,.0f} ms)"
    as_of = f"{q['as_of']['end']['max_s']:.2f} s ({q['as_of']['end']['events_replayed']:,} " \
            "events)" if q else "—"
    mode = " overlapped" if f.get("pipeline", {}).get("overlapped") else ""
    return (f"| {f['scale']:g}{mode} | {s['ingest']['requests']:,} | "
            f"{s['ingest']['events']:,} | "
            f"{s['ingest']['requests_per_s']:,.0f} ({r.get('ingest_to_raw_save', '—')}) | "
            f"{s['publish']['events_per_s']:,.0f} ({r.get('publish_to_raw_produce', '—')}) | "
            f"{s['project']['events_per_s']:,.0f} ({r.get('project_to_raw_consume', '—')}) | "
            f"{t['pipeline_seconds']:,.0f} s ({t['pipeline_minutes_at_full_scale_estimate']:,}"
            f" min) | {audit} | {as_of} | {rss(peak):,.0f} MiB ({peak}) | "
            f"{s['ingest']['store_mib']:,} / {s['publish']['topic_mib']:,} / "
            f"{s['project']['read_models_mib']:,} MiB | {f['date']}, {m['cores']} cores, "
            f"{m['memory_gib']} GiB, {f.get('commit', 'unknown')} | `{f['command']}` |")


def update_results_md(md: Path, folder: Path) -> None:
    """Rewrite the table between the markers; the prose around it is kept."""
    text = md.read_text() if md.is_file() else f"# Scale results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    md.write_text(f"{head}{BEGIN}\n{results_table(folder)}\n{END}{tail}")


@app.command()
def main(
    scale: Annotated[float, typer.Option(help="F: the share of the ministry's ten months",
                                         min=0.0001, max=2.0)] = 0.01,
    seed: Annotated[int, typer.Option(help="the simulation's seed")] = SEED,
    processes: Annotated[int, typer.Option(help="processes for the projection rebuild",
                                           min=1)] = 2,
    work: Annotated[Path | None, typer.Option(help="folder for the run's store, topic "
                                              "and read models (emptied first)")] = None,
    profile: Annotated[list[str] | None, typer.Option(help="a stage to run under cProfile")
                       ] = None,
    baseline_limit: Annotated[int, typer.Option(help="items a baseline runs on at most",
                                                min=1000)] = 2_000_000,
    accounts: Annotated[int, typer.Option(help="credential audits to time", min=1)] = 200,
    match: Annotated[str, typer.Option(help="size F by the total of requests (F x 18M) or "
                                       "by seed 002's service counts")] = "requests",
    keep: Annotated[bool, typer.Option(help="keep the work folder afterwards")] = False,
    overlap: Annotated[bool, typer.Option(help="ingest, publish and project at once, as "
                                          "the ministry runs them (bench/overlap.py)")
                       ] = False,
    out: Annotated[Path | None, typer.Option(help="results file")] = None,
    resume: Annotated[bool, typer.Option(help="go on with the stopped run of --out in "
                                         "--work: its stages with figures are not run "
                                         "again")] = False,
    results_md: Annotated[Path | None, typer.Option(help="the RESULTS.md to update")] = None,
) -> None:
    """The whole pipeline at scale F, stage by stage, beside its baselines."""
    if match not in ("requests", "services"):
        raise typer.BadParameter(f"--match: requests or services, not {match!r}")
    wanted = set(profile or ())
    if wanted - set(STAGES):
        raise typer.BadParameter(f"--profile: one of {', '.join(STAGES)}, not "
                                 f"{', '.join(sorted(wanted - set(STAGES)))}")
    if resume and (work is None or overlap):
        raise typer.BadParameter("--resume: give the stopped run's --work; an overlapped "
                                 "run cannot be resumed (its stages ran as one)")
    folder = work or CACHE / f"scale-{scale:g}-{uuid.uuid4().hex[:6]}"
    if folder.parent == CACHE:
        CACHE.mkdir(exist_ok=True)
        (CACHE / ".gitignore").write_text("*\n")
    path = out or RESULTS / f"scale-{scale:g}{'-overlapped' if overlap else ''}.json"
    execute(scale, seed, processes, folder, wanted, baseline_limit, accounts, path, match,
            overlap, resume)
    if not keep:  # a run that stopped keeps its folder, for --resume
        shutil.rmtree(folder, ignore_errors=True)
    update_results_md(results_md or RESULTS_MD, path.parent)
    console.print(f"figures written to {path}; table in {results_md or RESULTS_MD}")


if __name__ == "__main__":
    app()
