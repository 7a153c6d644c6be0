"""The as-of replay of the largest establishments from a cold page cache, its scattered
reads made one at a time and several at once, on one kept `bench.scale` work folder.

The as-of reads an establishment's events and its workers' streams, scattered through
the whole store; once the store is larger than memory those reads come from the disk.
domain/persistence.py sends them out READERS at a time; the baseline, measured in the
same run on the same establishments, reads them on one connection (READERS = 1). The
page cache is dropped before every replay (root only), each establishment replayed
both ways, in alternating order.

    .venv/bin/python -m bench.as_of_reads --work /tmp/scale-0.2
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.common import RESULTS, drop_caches, print_table, progress, write_results
from bench.scale import largest_establishments
from domain import persistence
from domain.ledger import Ledger
from replay.as_of import as_of
from replay.history import Cutoff, from_store

app = typer.Typer(add_completion=False)


@contextmanager
def readers(count: int) -> Iterator[None]:
    kept = persistence.READERS
    persistence.READERS = count
    try:
        yield
    finally:
        persistence.READERS = kept


def cold_as_of(ledger: Ledger, number: str, count: int, drop: bool) -> tuple[float, int]:
    if drop:
        drop_caches()
    with readers(count):
        started = time.perf_counter()
        state = as_of(number, from_store(ledger, number, Cutoff()))
        return time.perf_counter() - started, state.events


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "max_s": max(times)}


@app.command()
def main(
    work: Annotated[Path, typer.Option(help="a work folder kept by bench.scale --keep")],
    establishments: Annotated[int, typer.Option(min=1, help="the largest N")] = 5,
    drop: Annotated[bool, typer.Option("--drop-caches/--warm", help="drop the page "
                                       "cache before each replay (root)")] = True,
    out: Annotated[Path | None, typer.Option(help="results file")] = None,
) -> None:
    """Time each largest establishment's as-of, its reads one at a time and at once."""
    ledger = Ledger(f"sqlite:///{work / 'events.sqlite'}")
    chosen = largest_establishments(ledger, establishments)
    alone, apart = "one at a time", f"{persistence.READERS} at once"
    ways = {alone: 1, apart: persistence.READERS}
    times: dict[str, list[float]] = {way: [] for way in ways}
    each: list[dict[str, Any]] = []
    with progress() as bar:
        task = bar.add_task("as-of replays, cold", total=len(chosen) * len(ways))
        for i, (number, own) in enumerate(chosen):
            order = list(ways.items()) if i % 2 == 0 else list(reversed(ways.items()))
            row: dict[str, Any] = {"establishment_id": number, "own_events": own}
            for way, count in order:
                seconds, row["events_replayed"] = cold_as_of(ledger, number, count, drop)
                times[way].append(seconds)
                row[way] = seconds
                bar.update(task, advance=1)
            each.append(row)
    result = {"work": str(work), "dropped_caches": drop, "establishments": each,
              "ways": {way: summary(t) for way, t in times.items()},
              "ratio_median": statistics.median(times[apart]) / statistics.median(times[alone])}
    name = f"as-of-reads-{work.name}"
    path = write_results(name, result, out or RESULTS / "side-runs" / f"{name}.json")
    print_table(f"as-of of the {len(chosen)} largest establishments, "
                f"{'cold' if drop else 'warm'}", ("establishment", "events", *ways),
                [(r["establishment_id"], r["events_replayed"], *(r[w] for w in ways))
                 for r in each])
    print(f"figures written to {path}")


if __name__ == "__main__":
    app()
