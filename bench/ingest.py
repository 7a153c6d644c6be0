"""Ingest throughput: simulated requests a second, one at a time and batched, beside the
eventsourcing library's own save rate measured in the same run.

The raw save rate is the ceiling a ledger built on the library can approach: a minimal
aggregate with one event type, saved through a plain `Application` persisted by
eventsourcing-sqlalchemy, with as many events in as many transactions as the ingest run
it stands beside. The ratio (ingest's events/s over raw events/s) says what validation,
authorization, rules, hashing and our envelopes cost on top of storage, and it holds on
a noisy machine where the absolute rates do not.

    python -m bench.ingest [--requests 100000] [--single-limit 10000] [--no-postgres]
"""

from __future__ import annotations

import cProfile
import io
import itertools
import math
import pstats
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from statistics import median
from typing import Annotated, Any

import typer
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from sqlalchemy import func, select

from bench.common import (
    RESULTS,
    console,
    postgres,
    print_table,
    progress,
    rate,
    sqlite_url,
    timed,
    write_results,
)
from domain.ingest import IngestReport, ingest
from domain.ledger import Ledger
from domain.settings import Settings
from simulator import simulate

SEED = 20250101
MONTHS = 12
REQUESTS_PER_ESTABLISHMENT = 120  # over MONTHS, bootstrap included (measured)
TARGET_REQUESTS_PER_S = 10_000
BIG_BATCH = 2_000


# -- the workload ----------------------------------------------------------------------
def workload(requests: int, folder: Path) -> tuple[list[bytes], dict[str, Any]]:
    """The first `requests` lines of one seeded simulation sized to hold them; re-run
    larger in the rare case it falls short."""
    establishments = max(5, math.ceil(requests * 1.15 / REQUESTS_PER_ESTABLISHMENT))
    while True:
        out = folder / "requests.jsonl"
        summary = simulate(establishments=establishments, months=MONTHS, seed=SEED, out=out,
                           start=date(2025, 1, 1))
        if summary.requests >= requests:
            break
        establishments = math.ceil(establishments * 1.5)
    with out.open("rb") as lines:
        taken = [line for line in itertools.islice(lines, requests)]
    return taken, {"establishments": establishments, "months": MONTHS, "seed": SEED,
                   "simulated_requests": summary.requests}


# -- the baseline: the library alone -----------------------------------------------------
class Tally(Aggregate):
    """The smallest aggregate the library saves: one event type, one integer."""

    def __init__(self) -> None:
        self.n = 0

    @event("Counted")
    def count(self) -> None:
        self.n += 1


class RawSave(Application):  # type: ignore[type-arg]
    """A plain eventsourcing Application on the library's own SQLAlchemy recorders."""

    def __init__(self, url: str) -> None:
        super().__init__(env={"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
                              "SQLALCHEMY_URL": url, "CREATE_TABLE": "y"})


def transactions(events: int, count: int) -> Iterator[int]:
    """How many events each of `count` transactions holds, spreading `events` evenly."""
    edges = [round(i * events / count) for i in range(count + 1)]
    return (b - a for a, b in itertools.pairwise(edges) if b > a)


def raw_save(url: str, events: int, count: int, streams: int,
             tick: Callable[[int], None]) -> float:
    """Seconds to save `events` events over `streams` aggregates in `count` saves."""
    app = RawSave(url)
    pool: list[Tally | None] = [None] * max(1, streams)
    made = itertools.count()

    def next_event() -> Tally:
        i = next(made) % len(pool)
        found = pool[i]
        if found is None:
            pool[i] = found = Tally()
        else:
            found.count()
        return found

    def save_all() -> None:
        done = 0
        for size in transactions(events, count):
            touched = {id(t): t for t in (next_event() for _ in range(size))}
            app.save(*touched.values())
            done += size
            tick(done)

    seconds = timed(save_all)[0]
    dispose(app)
    return seconds


# -- one run -----------------------------------------------------------------------------
@dataclass
class Run:
    mode: str
    batch_size: int
    lines: list[bytes]


@dataclass
class Databases:
    """Fresh, empty databases of one kind, dropped after use so that repeated rounds of
    100,000 requests do not fill the disk."""

    kind: str
    create: Callable[[str], str]
    drop: Callable[[str], None]


def sqlite_databases(folder: Path) -> Databases:
    def drop(name: str) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (folder / f"{name}.sqlite{suffix}").unlink(missing_ok=True)

    return Databases("sqlite", lambda name: sqlite_url(folder, name), drop)


def postgres_databases(server: Any) -> Databases:
    return Databases("postgresql", server.create_database, server.drop_database)


def streams_in(ledger: Ledger) -> int:
    table = ledger.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
    with ledger.recorder.datastore.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count(table.c.originator_id.distinct())))
                   .scalar_one())


def dispose(app: Application) -> None:  # type: ignore[type-arg]
    """Close the pool before the database is dropped."""
    app.recorder.datastore.engine.dispose()  # type: ignore[attr-defined]


def ingest_run(url: str, run: Run, profile: cProfile.Profile | None,
               tick: Callable[[int], None]) -> tuple[float, IngestReport, int]:
    ledger = Ledger(url)
    if profile:
        profile.enable()
    seconds, report = timed(lambda: ingest(ledger, run.lines, batch_size=run.batch_size,
                                           progress=tick))
    if profile:
        profile.disable()
    streams = streams_in(ledger)
    dispose(ledger)
    return seconds, report, streams


def one_round(db: Databases, run: Run, i: int, profile: cProfile.Profile | None,
              bar: Any) -> tuple[float, IngestReport, int, float]:
    """Ingest, then at once the raw save of the same events in as many transactions: a
    pair measured back to back, so a burst of other work hits both or neither."""
    n = len(run.lines)
    name = f"ingest_{run.batch_size}_{i}"
    task = bar.add_task(f"{db.kind} round {i + 1} ingest {run.mode}", total=n)
    seconds, report, streams = ingest_run(db.create(name), run, profile,
                                          lambda done: bar.update(task, completed=done))
    db.drop(name)
    raw = f"raw_{run.batch_size}_{i}"
    task = bar.add_task(f"{db.kind} round {i + 1} raw save {run.mode}", total=report.events)
    raw_s = raw_save(db.create(raw), report.events, math.ceil(n / run.batch_size), streams,
                     lambda done: bar.update(task, completed=done))
    db.drop(raw)
    return seconds, report, streams, raw_s


def measure(db: Databases, run: Run, rounds: int,
            profile: cProfile.Profile | None) -> dict[str, Any]:
    """Medians over rounds of (ingest, raw save) pairs; the ratio is the median of each
    pair's own ratio."""
    n = len(run.lines)
    with progress() as bar:
        pairs = [one_round(db, run, i, profile if i == 0 else None, bar)
                 for i in range(rounds)]
    _, report, streams, _ = pairs[0]
    events = report.events
    return {
        "backend": db.kind, "mode": run.mode, "batch_size": run.batch_size, "rounds": rounds,
        "requests": n, "events": events, "streams": streams,
        "transactions": math.ceil(n / run.batch_size),
        "accepted": sum(report.accepted.values()), "refused": sum(report.refused.values()),
        "malformed": len(report.malformed),
        "seconds": median(p[0] for p in pairs), "seconds_runs": [p[0] for p in pairs],
        "requests_per_s": median(rate(n, p[0]) for p in pairs),
        "events_per_s": median(rate(events, p[0]) for p in pairs),
        "raw_save_seconds": median(p[3] for p in pairs),
        "raw_save_seconds_runs": [p[3] for p in pairs],
        "raw_save_events_per_s": median(rate(events, p[3]) for p in pairs),
        "ratio_to_raw_save": median(p[3] / p[0] for p in pairs),
    }


def backend_runs(db: Databases, lines: list[bytes], single_limit: int, rounds: int,
                 profile: cProfile.Profile | None) -> list[dict[str, Any]]:
    default = Settings().ingest_batch_size
    runs = [Run(f"batched ({default}, the default)", default, lines),
            Run(f"batched ({BIG_BATCH})", BIG_BATCH, lines),
            Run("one at a time", 1, lines[:single_limit])]
    return [measure(db, run, rounds, profile if i == 0 else None)
            for i, run in enumerate(runs)]


# -- reporting ---------------------------------------------------------------------------
def report(results: list[dict[str, Any]], single_limit: int, requests: int) -> dict[str, Any]:
    rows = [(f"{r['backend']}: {r['mode']}", r["requests"], r["requests_per_s"],
             r["events_per_s"], r["accepted"], r["refused"], r["raw_save_events_per_s"],
             r["ratio_to_raw_save"]) for r in results]
    print_table("Ingest of simulated requests (raw save = the eventsourcing library alone, "
                "same events, same transactions, same run)",
                ("run", "requests", "requests/s", "events/s", "accepted", "refused",
                 "raw save events/s", "ingest / raw"), rows)
    if single_limit < requests:
        console.print(f"One-at-a-time runs ingest only the first {single_limit:,} of the "
                      f"{requests:,} requests (--single-limit): the simulation's bootstrap, "
                      "mostly hires and first permits.")
    aim = next((r for r in results if r["backend"] == "sqlite"), None)
    met = aim is not None and aim["requests_per_s"] >= TARGET_REQUESTS_PER_S
    if aim is not None:
        console.print(f"Aim: batched ingest ≥ {TARGET_REQUESTS_PER_S:,} requests/s on SQLite "
                      f"(default batch): [bold]{'met' if met else 'NOT met'}[/] "
                      f"({aim['requests_per_s']:,.0f} requests/s)")
    return {"target_requests_per_s": TARGET_REQUESTS_PER_S, "target_met": met}


def profile_text(profile: cProfile.Profile, top: int = 15) -> str:
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def run(requests: int = 100_000, *, single_limit: int = 10_000, use_postgres: bool = True,
        rounds: int = 3, out: Path | None = None, profile: bool = False) -> dict[str, Any]:
    """Simulate once, ingest on SQLite (and PostgreSQL), write and print the figures."""
    profiler = cProfile.Profile() if profile else None
    with tempfile.TemporaryDirectory(prefix="sijil-bench-") as name:
        folder = Path(name)
        console.print(f"simulating {requests:,} requests…")
        lines, simulation = workload(requests, folder)
        results = backend_runs(sqlite_databases(folder), lines, single_limit, rounds,
                               profiler)
        with postgres(use_postgres) as (server, missing):
            if server is not None:
                results += backend_runs(postgres_databases(server), lines, single_limit,
                                        rounds, None)
            elif use_postgres:
                console.print(f"[yellow]PostgreSQL skipped[/]: {missing}")
    figures = {"requests": requests, "single_limit": single_limit, "rounds": rounds,
               "ingest_batch_size_default": Settings().ingest_batch_size,
               "simulation": simulation, "postgres_note": missing, "results": results,
               **report(results, single_limit, requests)}
    if profiler is not None:
        figures["profile_top15_tottime"] = profile_text(profiler)
        console.print(figures["profile_top15_tottime"])
    path = write_results("ingest", figures, out)
    console.print(f"figures written to {path}")
    return figures


app = typer.Typer(add_completion=False)


@app.command()
def main(
    requests: Annotated[int, typer.Option(help="simulated requests to ingest")] = 100_000,
    single_limit: Annotated[int, typer.Option(
        help="requests for the one-at-a-time runs (they are slow)")] = 10_000,
    use_postgres: Annotated[bool, typer.Option(
        "--postgres/--no-postgres", help="also on a throwaway PostgreSQL server")] = True,
    rounds: Annotated[int, typer.Option(
        help="(ingest, raw save) pairs per run; the medians are reported")] = 3,
    profile: Annotated[bool, typer.Option(
        help="cProfile the default batched SQLite run; print the top 15 by tottime")]
        = False,
    out: Annotated[Path | None, typer.Option(
        help=f"results file (default {RESULTS.name}/ingest.json)")] = None,
) -> None:
    """Requests a second, one at a time and batched, against the library's save rate."""
    run(requests, single_limit=single_limit, use_postgres=use_postgres, rounds=rounds,
        out=out, profile=profile)


if __name__ == "__main__":
    app()
