"""Rebuilding every projection from offset 0, beside the raw consume rate of the topic.

The workload: a seeded simulation ingested into a SQLite store of at least --events
events, published once (the Publisher: a Kafka transaction a page) to a topic of
--partitions partitions. Store and broker are kept in a cache folder (default
bench/.cache/projections-<events>-p<partitions>), so a second run starts measuring at
once; the broker there restarts on the ports it was made with (else a fresh one, and the
store is published again).

Each round, each in a fresh process (so that its peak memory is its own):
- raw consume (baseline): kafka-python's consumer, read_committed, CRC checks on,
  assigned every partition, max_poll_records as the rebuild's --batch, no decoding;
- rebuild: `replay.rebuild.Rebuild` of every projection into a fresh SQLite read-model
  database — prepare, build (offset 0 to the end, in position order, folded into shadow
  tables) and swap (indexes built, tables swapped in, offsets set).
The rate is events / seconds from the consumer's creation to the swap's commit; the
ratio is the rebuild's rate over the raw rate of the same round (medians over rounds).
Aim: 60% or more. Below it (or with --profile), the rebuild is profiled once (cProfile,
top 20 by tottime).

    python -m bench.projections [--events 1000000] [--partitions 6] [--repeats 1]
                                [--batch 5000] [--profile/--no-profile] [--cache DIR]
                                [--out FILE]
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import multiprocessing
import os
import pstats
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from kafka import KafkaConsumer, TopicPartition

from bench.common import RESULTS, console, print_table, progress, rate, write_results
from bench.kafka_log import workload
from consumers.broker import BrokerError, LocalBroker, free_port, port_answers
from consumers.publisher import Publisher
from consumers.topics import admin_client, dead_letter_topic
from domain.ledger import Ledger
from domain.settings import Settings

AIM = 0.60
CACHE = Path(__file__).resolve().parent / ".cache"
TOP = 20


# -- the cached workload: store, broker, topic -------------------------------------------
def cached_store(folder: Path, events: int) -> tuple[str, dict[str, Any]]:
    """The store of `events` events, simulated and ingested once into `folder`."""
    marker = folder / "workload.json"
    url = f"sqlite:///{folder / 'events.sqlite'}"
    if marker.is_file():
        return url, orjson.loads(marker.read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("events.sqlite*"):
        stale.unlink()
    made, simulation = workload(events, folder)
    assert made == url
    (folder / "requests.jsonl").unlink(missing_ok=True)
    marker.write_bytes(orjson.dumps(simulation))
    return url, simulation


@contextlib.contextmanager
def cached_broker(folder: Path) -> Iterator[tuple[str, bool]]:
    """(bootstrap, reused): the cached broker on its own ports; if that fails, a new one
    in its place (its topics are gone: the caller publishes again)."""
    given = os.environ.get("SIJIL_KAFKA_BOOTSTRAP")
    if given:
        yield given, True
        return
    settings = Settings()
    lib = (settings.kafka_lib or settings.home / "kafka" / "lib").resolve()
    ports_file = folder / "ports.json"
    broker: LocalBroker | None = None
    reused = False
    if ports_file.is_file() and (folder / "kafka").is_dir():
        ports = orjson.loads(ports_file.read_bytes())
        if not any(port_answers("127.0.0.1", p) for p in ports):
            broker = LocalBroker(folder, port=ports[0], controller_port=ports[1], lib=lib)
            try:
                with console.status(f"restarting the cached broker on {broker.bootstrap} …"):
                    broker.up(timeout=120)
                reused = True
            except BrokerError as error:
                console.print(f"[yellow]the cached broker did not start[/]: {error}")
                broker.stop()
                broker = None
    if broker is None:
        shutil.rmtree(folder / "kafka", ignore_errors=True)
        port, controller = free_port(), free_port()
        while controller == port:
            controller = free_port()
        broker = LocalBroker(folder, port=port, controller_port=controller, lib=lib)
        with console.status(f"starting a broker on {broker.bootstrap} …"):
            broker.up(timeout=120)
        ports_file.write_bytes(orjson.dumps([port, controller]))
    try:
        yield broker.bootstrap, reused
    finally:
        broker.stop()


def topic_records(bootstrap: str, topic: str) -> int | None:
    """Offsets (records and transaction markers) on the topic, None if it is missing."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return None
        tps = [TopicPartition(topic, p) for p in partitions]
        return int(sum(consumer.end_offsets(tps).values()))
    finally:
        consumer.close()


def cached_topic(folder: Path, url: str, bootstrap: str, partitions: int) -> str:
    """The store published once to a topic of the cached broker; again if it is gone."""
    marker = folder / "topic.json"
    store_events = Ledger(url).recorder.max_notification_id() or 0
    if marker.is_file():
        known = orjson.loads(marker.read_bytes())
        if (known["partitions"] == partitions and known["events"] == store_events
                and (topic_records(bootstrap, known["topic"]) or 0) >= store_events):
            return str(known["topic"])
    topic = f"bench.projections.{uuid.uuid4().hex[:8]}"
    admin = admin_client(bootstrap, client_id="sijil-bench")
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1},
                             dead_letter_topic(topic): {"num_partitions": 1,
                                                        "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()
    publisher = Publisher(Ledger(url), bootstrap, topic)
    try:
        with progress() as bar:
            task = bar.add_task("publish (events)", total=store_events)
            published = publisher.publish_pending(
                lambda n: bar.update(task, completed=n)).published
    finally:
        publisher.close()
    marker.write_bytes(orjson.dumps({"topic": topic, "partitions": partitions,
                                     "events": published}))
    return topic


# -- the runs, each in its own process ------------------------------------------------------
def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    """This process's and its children's CPU time (user and system)."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def raw_consume(bootstrap: str, topic: str, batch: int) -> dict[str, Any]:
    """Every committed record of the topic, not decoded."""
    from bench.kafka_log import raw_consume as consume

    seconds, count = consume(bootstrap, topic, batch)
    return {"events": count, "seconds": seconds, "peak_rss_mib": peak_rss_mib(),
            "cpu_seconds": cpu_seconds()}


def rebuild_all(bootstrap: str, topic: str, batch: int, folder: str,
                profile: bool = False, processes: int = 1) -> dict[str, Any]:
    """Every projection rebuilt from offset 0 into a fresh SQLite database."""
    from projections.catalog import ALL
    from replay.rebuild import Rebuild

    url = f"sqlite:///{folder}/read-{uuid.uuid4().hex[:8]}.sqlite"
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    rebuild = Rebuild(url=url, bootstrap=bootstrap, topic=topic,
                      names=[p.name for p in ALL], batch=batch, processes=processes)
    try:
        rebuild.prepare()
        rebuild.build()
        built = time.perf_counter()
        report = rebuild.swap()
    finally:
        rebuild.close()
    ended = time.perf_counter()
    if profiler:
        profiler.disable()
    out: dict[str, Any] = {
        "events": report.folded, "seconds": ended - started, "build_seconds": built - started,
        "swap_seconds": ended - built, "rows": report.rows, "failed": report.failed,
        "undecodable": report.undecodable, "peak_rss_mib": peak_rss_mib(),
        "cpu_seconds": cpu_seconds(),
        "peak_rss_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "database_mib": round(sum(f.stat().st_size for f in Path(folder).glob("read-*"))
                              / 2**20, 1)}
    if profiler:
        out["profile_text"], out["profile_top"] = top_tottime(profiler)
    return out


def in_child(function: Any, *args: Any) -> dict[str, Any]:
    """function(*args) in a fresh process (not a daemon: a rebuild starts its own)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result: dict[str, Any] = pool.submit(function, *args).result()
    return result


def top_tottime(profile: cProfile.Profile, top: int = TOP) -> tuple[str, list[dict[str, Any]]]:
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text).sort_stats("tottime")
    stats.print_stats(top)
    rows = []
    for (file, line, name), (_, calls, tottime, cumtime, _) in sorted(
            stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]:  # type: ignore[attr-defined]
        where = file.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append({"function": f"{where}:{line}({name})", "calls": calls,
                     "tottime_s": round(tottime, 3), "cumtime_s": round(cumtime, 3)})
    return text.getvalue(), rows


# -- one run -------------------------------------------------------------------------------
def variants(processes: int) -> list[tuple[str, int]]:
    out = [("rebuild", 1)]
    if processes > 1:
        out.append((f"rebuild_{processes}_processes", processes))
    return out


def run(events: int = 1_000_000, *, partitions: int = 6, repeats: int = 1, batch: int = 5000,
        processes: int | None = None, profile: bool | None = None, cache: Path | None = None,
        out: Path | None = None) -> dict[str, Any]:
    folder = cache or CACHE / f"projections-{events}-p{partitions}"
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder.parent / ".gitignore"
    if folder.parent == CACHE and not ignore.exists():
        ignore.write_text("*\n")
    parallel = processes if processes is not None else len(os.sched_getaffinity(0))
    url, simulation = cached_store(folder, events)
    rounds: list[dict[str, Any]] = []
    profiled: dict[str, Any] = {}
    with cached_broker(folder) as (bootstrap, reused), \
            tempfile.TemporaryDirectory(prefix="sijil-bench-projections-") as scratch:
        topic = cached_topic(folder, url, bootstrap, partitions)
        console.print(f"broker {bootstrap} ({'cached' if reused else 'new'}), topic {topic}")
        for round_ in range(1, repeats + 1):
            console.rule(f"round {round_} of {repeats}")
            with console.status("raw consume …"):
                done = {"raw_consume": in_child(raw_consume, bootstrap, topic, batch)}
            note("raw_consume", done["raw_consume"])
            for name, n in variants(parallel):
                with console.status(f"{name}: every projection …"):
                    done[name] = in_child(rebuild_all, bootstrap, topic, batch, scratch,
                                          False, n)
                note(name, done[name])
                for stale in Path(scratch).glob("read-*"):
                    stale.unlink()
            rounds.append(done)
        ratio = statistics.median(ratio_of(r, "rebuild") for r in rounds)
        if profile or (profile is None and ratio < AIM):
            with console.status("profiling a rebuild in one process (cProfile) …"):
                child = in_child(rebuild_all, bootstrap, topic, batch, scratch, True)
            console.rule(f"profile: rebuild of every projection (top {TOP} by tottime)")
            console.print(child["profile_text"], highlight=False)
            profiled = {"events": child["events"], "seconds": round(child["seconds"], 1),
                        "top": child["profile_top"]}
    figures = figures_of(rounds, variants(parallel), events, partitions, batch, simulation,
                         profiled)
    report(figures)
    path = write_results("projections", figures, out)
    console.print(f"figures written to {path}")
    return figures


def note(name: str, figures: dict[str, Any]) -> None:
    line = (f"  {name}: {rate(figures['events'], figures['seconds']):,.0f} events/s "
            f"({figures['events']:,} in {figures['seconds']:.1f} s")
    if "build_seconds" in figures:
        line += f": build {figures['build_seconds']:.1f} s, swap {figures['swap_seconds']:.1f} s"
    console.print(line + f"; peak RSS {figures['peak_rss_mib']:,.0f} MiB)")


def ratio_of(round_: dict[str, Any], name: str) -> float:
    mine, raw = round_[name], round_["raw_consume"]
    return rate(mine["events"], mine["seconds"]) / rate(raw["events"], raw["seconds"])


def figures_of(rounds: list[dict[str, Any]], runs: list[tuple[str, int]], events: int,
               partitions: int, batch: int, simulation: dict[str, Any],
               profiled: dict[str, Any]) -> dict[str, Any]:
    def median(name: str, key: str) -> float:
        return float(statistics.median(r[name][key] for r in rounds))

    def rates(name: str, key: str = "seconds") -> list[float]:
        return [rate(r[name]["events"], r[name][key]) for r in rounds]

    results: dict[str, Any] = {
        "raw_consume": {"what": "kafka-python, read_committed, check_crcs, no decoding, "
                                f"max_poll_records {batch}",
                        "events": rounds[-1]["raw_consume"]["events"],
                        "events_per_s": round(statistics.median(rates("raw_consume"))),
                        "events_per_s_rounds": [round(x) for x in rates("raw_consume")],
                        "seconds": round(median("raw_consume", "seconds"), 1),
                        "peak_rss_mib": round(median("raw_consume", "peak_rss_mib"))}}
    for name, processes in runs:
        ratios = [ratio_of(r, name) for r in rounds]
        last = rounds[-1][name]
        results[name] = {
            "what": "replay.rebuild.Rebuild of every projection into a fresh SQLite "
                    "database: prepare, build from offset 0, swap"
                    + (f"; independent parts built in {processes} processes"
                       if processes > 1 else "; one process"),
            "processes": processes, "events": last["events"],
            "events_per_s": round(statistics.median(rates(name))),
            "events_per_s_rounds": [round(x) for x in rates(name)],
            "build_only_events_per_s": round(statistics.median(rates(name, "build_seconds"))),
            "seconds": round(median(name, "seconds"), 1),
            "build_seconds": round(median(name, "build_seconds"), 1),
            "swap_seconds": round(median(name, "swap_seconds"), 1),
            "peak_rss_mib": round(median(name, "peak_rss_mib")),
            "peak_rss_largest_child_mib": round(median(name, "peak_rss_children_mib")),
            "database_mib": last["database_mib"], "rows": last["rows"],
            "failed": last["failed"], "undecodable": last["undecodable"],
            "ratio": round(statistics.median(ratios), 3),
            "ratio_rounds": [round(x, 3) for x in ratios],
            "aim_met": statistics.median(ratios) >= AIM}
    return {
        "events_asked": events, "events": rounds[-1]["raw_consume"]["events"],
        "partitions": partitions, "batch": batch, "repeats": len(rounds),
        "simulation": simulation, "results": results, "aim_ratio": AIM,
        "ratio": results["rebuild"]["ratio"], "profile": profiled,
    }


def report(figures: dict[str, Any]) -> None:
    rows: list[tuple[Any, ...]] = []
    for name, r in figures["results"].items():
        rows.append((name, r["events_per_s"], r["seconds"], r["peak_rss_mib"],
                     r.get("peak_rss_largest_child_mib") or None, r.get("ratio"),
                     None if "ratio" not in r else ("met" if r["aim_met"] else "NOT met")))
        if "build_seconds" in r:
            rows.append(("  build (offset 0 to the end)", r["build_only_events_per_s"],
                         r["build_seconds"], None, None, None, None))
            rows.append(("  swap (indexes, rename, offsets)", None, r["swap_seconds"], None,
                         None, None, None))
    print_table(f"Rebuild of every projection from offset 0 beside raw consume "
                f"({figures['events']:,} events, {figures['partitions']} partitions, "
                f"medians of {figures['repeats']} round(s))",
                ("run", "events/s", "seconds", "peak RSS MiB", "largest child MiB",
                 "ratio to raw", f"aim ≥ {AIM:.0%}"), rows)


app = typer.Typer(add_completion=False)


@app.command()
def main(
    events: Annotated[int, typer.Option(help="events in the store and on the topic")
                      ] = 1_000_000,
    partitions: Annotated[int, typer.Option(help="partitions of the events topic")] = 6,
    repeats: Annotated[int, typer.Option(min=1, help="rounds (medians)")] = 1,
    batch: Annotated[int, typer.Option(min=1, help="max_poll_records; records a "
                                                   "transaction of the rebuild")] = 5000,
    processes: Annotated[int | None, typer.Option(
        help="also rebuild with the independent parts in this many processes "
             "(default: the usable cores; 1: only in one process)")] = None,
    profile: Annotated[bool | None, typer.Option(
        help="cProfile a rebuild (default: only below the aim)")] = None,
    cache: Annotated[Path | None, typer.Option(
        help="the workload's folder (default bench/.cache/projections-<events>-p<n>)")
                     ] = None,
    out: Annotated[Path | None, typer.Option(
        help=f"results file (default {RESULTS.name}/projections.json)")] = None,
) -> None:
    """Rebuild of every projection from offset 0, beside raw consume of the same topic."""
    run(events, partitions=partitions, repeats=repeats, batch=batch, processes=processes,
        profile=profile, cache=cache, out=out)


if __name__ == "__main__":
    app()
