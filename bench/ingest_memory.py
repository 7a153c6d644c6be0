"""What the ingest's memory holds as the history grows: the population, or the history?

At F = 1.0 the ingest's resident memory rose from 766 to 1,387 MiB over its ten tenths
(bench/RESULTS.md, "Memory"), and the scale benchmark's rule (the second half peaks within
10 % of the first) called it not flat. This benchmark says what grew: it ingests one
simulated history and, every hundredth of the requests, reads the resident memory of the
deciding process and of its writer beside what the unit of work holds (the aggregates
that stay loaded, by kind, and the bounded cache), and at the end the bytes a held
aggregate takes (its objects walked, `sys.getsizeof`). The growth in memory is then set
beside the growth in what is held: if they match, the ingest holds the population it has
met (establishments, accounts), which the history adds to only as it meets new ones, and
not the history itself.

    python -m bench.ingest_memory [--scale 0.05] [--cache-size 5000] [--cold-mib 51]
                                  [--out FILE]

`--cache-size` defaults to the scale benchmark's cache (100,000 aggregates) times F and
`--cold-mib` to the cold tier's bound (SIJIL_INGEST_COLD_MIB, 4 GiB) times F, so that
both fill as early in the run, relative to the population, as at F = 1.0.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.common import RESULTS, console, print_table, progress, write_results
from bench.scale import SEED, establishments_for, in_child, mib, simulate_stage, tree_rss_mib
from domain.identifiers import account_stream, establishment_stream, worker_stream
from domain.ingest import cold_tier_bytes, ingest
from domain.known_streams import KnownStreams
from domain.ledger import Ledger
from domain.settings import Settings
from domain.unit_of_work import EventStore, UnitOfWork

SAMPLES = 100
CACHE_AT_FULL_SCALE = 100_000

app = typer.Typer(add_completion=False)


class WatchedLedger(Ledger):
    """A ledger that lets the benchmark see the unit of work the ingest makes."""

    name = Ledger.name  # the library names a subclass's tables after it otherwise
    uow: UnitOfWork | None = None

    def unit_of_work(self, cache_size: int = 100_000, store: EventStore | None = None,
                     known: KnownStreams | None = None, cold_bytes: int = 0) -> UnitOfWork:
        self.uow = super().unit_of_work(cache_size, store, known, cold_bytes)
        return self.uow


def own_rss_mib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def deep_bytes(thing: Any, seen: set[int] | None = None) -> int:
    """An object's bytes with everything it reaches through dicts, lists, tuples, sets
    and instance attributes, each object once for a given `seen`."""
    seen = set() if seen is None else seen
    if id(thing) in seen:
        return 0
    seen.add(id(thing))
    size = sys.getsizeof(thing)
    if isinstance(thing, dict):
        size += sum(deep_bytes(k, seen) + deep_bytes(v, seen) for k, v in thing.items())
    elif isinstance(thing, list | tuple | set | frozenset):
        size += sum(deep_bytes(item, seen) for item in thing)
    elif hasattr(thing, "__dict__"):
        size += deep_bytes(vars(thing), seen)
    return size


# The stream-id caches of domain/identifiers.py: bounded, but they fill as the history
# meets new workers, establishments and accounts.
STREAM_ID_CACHES = {"ids_" + f.__name__.removesuffix("_stream"): f
                    for f in (establishment_stream, worker_stream, account_stream)}


def held(uow: UnitOfWork) -> dict[str, int | float]:
    kinds = Counter(type(a).__name__ for a in uow.kept.values())
    return ({"kept_" + kind.lower(): count for kind, count in sorted(kinds.items())}
            | {"cached": len(uow.cache), "frozen": len(uow.cold),
               "frozen_mib": round(uow.cold.size / 2**20, 1)}
            | {name: f.cache_info().currsize for name, f in STREAM_ID_CACHES.items()})


def stream_id_entry_bytes(entries: int = 50_000) -> float:
    """What one entry of such a cache takes: a fresh one filled, traced."""
    fresh = lru_cache(maxsize=entries)(worker_stream.__wrapped__)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(entries):
        fresh(f"2{n:09d}")
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return round(grown / entries, 1)


def bytes_per_kind(uow: UnitOfWork) -> dict[str, float]:
    """Mean deep bytes of a held aggregate, by kind (kept and cached alike): the kind's
    aggregates walked together, so that what they share (attribute names, constants)
    counts once, as it takes memory once."""
    held_by_kind: dict[str, list[Any]] = {}
    for aggregate in [*uow.kept.values(), *uow.cache.values()]:
        if aggregate is not None:
            held_by_kind.setdefault(type(aggregate).__name__, []).append(aggregate)
    out = {}
    for kind, aggregates in sorted(held_by_kind.items()):
        seen: set[int] = set()
        out[kind] = round(sum(deep_bytes(a, seen) for a in aggregates) / len(aggregates), 1)
    return out


def measure(folder: Path, scale: float, cache_size: int, cold_bytes: int) -> dict[str, Any]:
    requests_file = folder / "requests.jsonl"
    # In a process of its own: the simulator's freed memory would otherwise be reused by
    # the ingest, hiding its growth.
    simulated = in_child(simulate_stage, str(folder), establishments_for(scale), 0, SEED)
    ledger = WatchedLedger(f"sqlite:///{folder / 'events.sqlite'}")
    samples: list[dict[str, Any]] = []
    every = max(1, simulated["requests"] // SAMPLES)
    started = time.perf_counter()

    def sample(done: int) -> None:
        if ledger.uow is not None and (not samples or done - samples[-1]["requests"] >= every):
            samples.append({"requests": done, "seconds": round(time.perf_counter() - started, 1),
                            "rss_mib": round(own_rss_mib(), 1),
                            "tree_rss_mib": round(tree_rss_mib(os.getpid()), 1),
                            **held(ledger.uow)})
        bar.update(task, completed=done)

    with progress() as bar, requests_file.open("rb") as lines:
        task = bar.add_task("ingest (requests)", total=simulated["requests"])
        report = ingest(ledger, lines, batch_size=Settings().ingest_batch_size,
                        cache_size=cache_size, cold_bytes=cold_bytes, progress=sample)
    assert ledger.uow is not None
    return {"scale": scale, "cache_size": cache_size, "cold_bytes": cold_bytes,
            "requests": report.decided,
            "events": report.events,
            **{k: simulated[k] for k in ("establishments", "workers", "accounts")},
            "store_mib": mib((folder / "events.sqlite").stat().st_size),
            "bytes_per_held_aggregate": bytes_per_kind(ledger.uow),
            "bytes_per_stream_id_entry": stream_id_entry_bytes(), "samples": samples}


def explain(figures: dict[str, Any]) -> dict[str, Any]:
    """The growth of the deciding process's memory from the middle sample to the last,
    beside the bytes of the aggregates it came to hold in that time."""
    samples, per = figures["samples"], figures["bytes_per_held_aggregate"]
    middle, last = samples[len(samples) // 2], samples[-1]
    kept = ids = 0.0
    for key, count in last.items():
        if key.startswith("kept_"):
            kind = key.removeprefix("kept_").capitalize()
            kept += (count - middle.get(key, 0)) * per.get(kind, 0.0)
        elif key.startswith("ids_"):
            ids += (count - middle[key]) * figures["bytes_per_stream_id_entry"]
    return {"rss_growth_second_half_mib": round(last["rss_mib"] - middle["rss_mib"], 1),
            "frozen_growth_second_half_mib": round(last["frozen_mib"] - middle["frozen_mib"],
                                                   1),
            "kept_growth_second_half_mib": round(kept / 2**20, 1),
            "stream_id_caches_growth_second_half_mib": round(ids / 2**20, 1),
            "rss_second_half_over_first": round(
                max(s["rss_mib"] for s in samples[len(samples) // 2:])
                / max(s["rss_mib"] for s in samples[:len(samples) // 2]), 2)}


def show(figures: dict[str, Any]) -> None:
    samples = figures["samples"]
    tenths = [samples[min(len(samples) - 1, round(i * (len(samples) - 1) / 10))]
              for i in range(11)]
    kinds = sorted({k for s in samples for k in s if k.startswith(("kept_", "ids_"))})
    print_table("ingest memory against what it holds",
                ["requests", "seconds", "RSS MiB", "tree RSS MiB", *kinds, "cached",
                 "frozen", "frozen MiB"],
                [(s["requests"], s["seconds"], s["rss_mib"], s["tree_rss_mib"],
                  *(s.get(k, 0) for k in kinds), s["cached"], s["frozen"], s["frozen_mib"])
                 for s in tenths])
    console.print(figures["explained"])
    console.print(figures["bytes_per_held_aggregate"])


@app.command()
def main(
    scale: Annotated[float, typer.Option(help="F: the share of the ministry's ten months",
                                         min=0.0001, max=1.0)] = 0.05,
    cache_size: Annotated[int | None, typer.Option(
        help="the unit of work's cache (default: 100,000 x F)", min=1)] = None,
    cold_mib: Annotated[float | None, typer.Option(
        help="the cold tier's bound in MiB (default: SIJIL_INGEST_COLD_MIB x F)", min=0)] = None,
    out: Annotated[Path | None, typer.Option(help="results file")] = None,
) -> None:
    cache = cache_size or max(1, round(CACHE_AT_FULL_SCALE * scale))
    cold = round(cold_mib * 2**20) if cold_mib is not None else round(cold_tier_bytes() * scale)
    with tempfile.TemporaryDirectory(prefix="sijil-ingest-memory-") as folder:
        figures = measure(Path(folder), scale, cache, cold)
    figures["explained"] = explain(figures)
    path = write_results("ingest-memory", figures, out or RESULTS / f"ingest-memory-{scale:g}.json")
    show(figures)
    console.print(f"results: {path}")


if __name__ == "__main__":
    app()
