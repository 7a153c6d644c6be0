"""The Kafka log: our publisher and subscriber runtime beside raw kafka-python, one run.

Baselines, measured in the same run on the same broker with the same records (real
encoded events of a simulated, ingested store):
- raw produce: kafka-python's idempotent producer with the Publisher's settings
  (acks=all, linger 5 ms, 256 KiB batches), records encoded beforehand;
- raw consume: kafka-python's consumer, read_committed, CRC checks on, assigned to
  every partition of the Publisher's topic, max_poll_records as the runtime's, no
  decoding.
Ours: the Publisher (store log -> a fresh topic, a transaction a page) and the
Subscriber runtime over that topic with a no-op effect handler (Kafka offsets), a
no-op SQL handler (offsets in SQLite), and the same in position order (`ordered=True`,
as the projections run it). Ratios: Publisher / raw produce and runtime / raw consume;
the aim is 60% or more.

The machine is shared and small, so the runs go in rounds (`--repeats`), each round
every run once, raw beside ours; a figure is the median over the rounds and a ratio the
median of each round's ratio. Below the aim, the run is profiled once (cProfile, the
main thread) and the top 15 functions by tottime are printed and kept.

    python -m bench.kafka_log [--events 200000] [--store-events N] [--repeats 3]
                              [--no-profile] [--out FILE]

A throwaway broker is started on free ports (consumers/broker.py), unless
SIJIL_KAFKA_BOOTSTRAP names one. When the store holds fewer events than --events, the
Publisher is rewound and publishes the store again until --events are out.
"""

from __future__ import annotations

import cProfile
import gc
import io
import itertools
import math
import os
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import Connection, create_engine

from bench.common import RESULTS, console, print_table, progress, rate, timed, write_results
from consumers.broker import LocalBroker, free_port
from consumers.codec import encode
from consumers.publisher import Publisher
from consumers.runtime import Delivery, Subscriber
from consumers.topics import admin_client, dead_letter_topic
from domain.envelope import contract_record
from domain.ingest import ingest
from domain.ledger import Ledger
from domain.settings import Settings
from simulator import simulate

AIM = 0.60
SEED = 20250301
MONTHS = 3
EVENTS_PER_ESTABLISHMENT = 70  # over MONTHS, bootstrap included (a first guess)
EVENTS_PER_REQUEST = 1.45  # measured: 1.44 to 1.54
INGEST_CHUNK = 2000  # requests a transaction, and a chunk of the ingest
PRODUCER_SETTINGS: dict[str, Any] = {  # the Publisher's, transactions aside
    "enable_idempotence": True, "acks": "all", "linger_ms": 5, "batch_size": 256 * 1024}
BATCH = 2000  # the Subscriber's default max_poll_records, used by the raw consumer too

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


# -- the broker and topics ---------------------------------------------------------------
@contextmanager
def broker(folder: Path) -> Iterator[tuple[str, str]]:
    """(bootstrap, what it is): SIJIL_KAFKA_BOOTSTRAP, else a throwaway local broker."""
    given = os.environ.get("SIJIL_KAFKA_BOOTSTRAP")
    if given:
        yield given, f"SIJIL_KAFKA_BOOTSTRAP={given}"
        return
    settings = Settings()
    lib = (settings.kafka_lib or settings.home / "kafka" / "lib").resolve()
    port = free_port()
    controller = free_port()
    while controller == port:
        controller = free_port()
    local = LocalBroker(folder / "broker", port=port, controller_port=controller, lib=lib)
    with console.status(f"starting a throwaway broker on {local.bootstrap} …"):
        local.up(timeout=120)
    try:
        yield local.bootstrap, f"throwaway local broker ({local.bootstrap}, heap {local.heap})"
    finally:
        local.stop()


def new_topic(bootstrap: str, label: str, partitions: int) -> str:
    name = f"bench.{label}.{uuid.uuid4().hex[:8]}"
    admin = admin_client(bootstrap, client_id="sijil-bench")
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1},
                             dead_letter_topic(name): {"num_partitions": 1,
                                                       "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()
    return name


# -- the workload -------------------------------------------------------------------------
def workload(events: int, folder: Path) -> tuple[str, dict[str, Any]]:
    """A SQLite store of a seeded simulation holding `events` events (a few more).

    Simulating is cheap and ingesting is not: the simulation is re-run larger until its
    requests promise enough events, then ingested a chunk at a time until enough are in.
    """
    establishments = max(5, math.ceil(events / EVENTS_PER_ESTABLISHMENT))
    requests = folder / "requests.jsonl"
    while True:
        with console.status(f"simulating {establishments:,} establishments × {MONTHS} "
                            "months …"):
            summary = simulate(establishments=establishments, months=MONTHS, seed=SEED,
                               out=requests)
        if summary.requests * EVENTS_PER_REQUEST >= events * 1.1:
            break
        establishments = math.ceil(establishments * 1.2 * events
                                   / (summary.requests * EVENTS_PER_REQUEST))
    url = f"sqlite:///{folder / 'events.sqlite'}"
    ledger, stored, taken = Ledger(url), 0, 0
    started = time.perf_counter()
    with progress() as bar, requests.open("rb") as lines:
        task = bar.add_task("ingest (events)", total=events)
        while stored < events and (chunk := list(itertools.islice(lines, INGEST_CHUNK))):
            stored += ingest(ledger, chunk, batch_size=INGEST_CHUNK).events
            taken += len(chunk)
            bar.update(task, completed=min(stored, events))
    return url, {"establishments": establishments, "months": MONTHS, "seed": SEED,
                 "requests_simulated": summary.requests, "requests_ingested": taken,
                 "store_events": stored,
                 "ingest_seconds": round(time.perf_counter() - started, 1)}


def encoded_records(url: str) -> list[Record]:
    """Every event of the store as the Publisher encodes it (untimed)."""
    ledger = Ledger(url)
    out: list[Record] = []
    start = 0
    with console.status("encoding the store's events for the raw baselines …"):
        while notes := ledger.recorder.select_notifications(start=start, limit=5000,
                                                            inclusive_of_start=False):
            for note in notes:
                event: Any = ledger.mapper.to_domain_event(note)
                out.append(encode(contract_record(event, note.id)))
            start = notes[-1].id
    # Kept alive for the whole run: out of the cyclic collector's way, so that its scans
    # of them do not slow the runs measured beside them.
    gc.collect()
    gc.freeze()
    return out


# -- producing -----------------------------------------------------------------------------
def raw_produce(bootstrap: str, topic: str, records: Sequence[Record], count: int,
                transaction: int | None = None) -> float:
    """Seconds to produce `count` records (cycling through `records`) and flush."""
    # The Publisher's codec, so that the ratio is fair.
    options = {**PRODUCER_SETTINGS, "compression_type": Settings().kafka_compression_type()}
    if transaction:
        options["transactional_id"] = f"bench-raw.{topic}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, **options)
    try:
        producer.partitions_for(topic)  # metadata fetched before the clock starts
        if transaction:
            producer.init_transactions()
        size = len(records)

        def produce() -> None:
            for begin in range(0, count, transaction or count):
                if transaction:
                    producer.begin_transaction()
                for i in range(begin, min(count, begin + (transaction or count))):
                    key, value, headers = records[i % size]
                    producer.send(topic, key=key, value=value, headers=headers)
                if transaction:
                    producer.commit_transaction()
            producer.flush()

        return timed(produce)[0]
    finally:
        producer.close()


def publisher_run(url: str, bootstrap: str, topic: str, count: int,
                  profile: cProfile.Profile | None = None) -> tuple[float, int]:
    """Seconds for the Publisher to put at least `count` events on `topic`, and how many.

    The store is re-published (the Publisher rewound to position 0) until `count` are out.
    """
    publisher = Publisher(Ledger(url), bootstrap, topic)  # init_transactions: untimed
    published = 0

    def publish() -> None:
        nonlocal published
        while published < count:
            if published:
                publisher.position = 0  # rewound: the store again
            published += publisher.publish_pending().published

    try:
        if profile:
            profile.enable()
        seconds = timed(publish)[0]
        if profile:
            profile.disable()
        return seconds, published
    finally:
        publisher.close()


# -- consuming -----------------------------------------------------------------------------
def raw_consume(bootstrap: str, topic: str, batch: int = BATCH, limit: int | None = None,
                tick: Callable[[int], None] | None = None) -> tuple[float, int]:
    """Seconds to read every committed record of the topic (or the first `limit`), and
    how many: kafka-python alone, CRC checks on, nothing decoded."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             check_crcs=True, enable_auto_commit=False, group_id=None,
                             max_poll_records=batch)
    try:
        parts = [TopicPartition(topic, p)
                 for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(parts)
        count, most = 0, limit if limit is not None else math.inf
        started = time.perf_counter()
        while count < most and any(consumer.position(tp) < ends[tp] for tp in parts):
            for messages in consumer.poll(timeout_ms=1000).values():
                count += len(messages)
            if tick:
                tick(count)
        return time.perf_counter() - started, count
    finally:
        consumer.close()


class NoEffect:
    """A no-op effect handler."""

    def handle(self, delivery: Delivery) -> None:
        return None


class NoSql:
    """A no-op SQL handler: only the offsets are written, in SQLite."""

    def handle(self, conn: Connection, deliveries: Sequence[Delivery]) -> None:
        return None


class TimedSubscriber(Subscriber):
    """The runtime unchanged, but it notes when its partitions were assigned."""

    assigned_at: float | None = None

    def seek_assigned(self, assigned: list[TopicPartition]) -> None:
        super().seek_assigned(assigned)
        if self.assigned_at is None:
            self.assigned_at = time.perf_counter()


def runtime_run(bootstrap: str, topic: str, sql_folder: Path | None,
                profile: cProfile.Profile | None = None, *, ordered: bool = False
                ) -> tuple[float, int]:
    """Seconds from assignment until caught up, and the events handled.

    With `sql_folder` the handler is a no-op SQL handler with offsets in SQLite there;
    without, a no-op effect handler. `ordered`: in position order across partitions.
    poll_ms=50 bounds the idle wait at the end.
    """
    group = f"bench-{'sql' if sql_folder else 'effect'}-{uuid.uuid4().hex[:8]}"
    engine = (create_engine(f"sqlite:///{sql_folder / (group + '.sqlite')}")
              if sql_folder else None)
    handler: NoSql | NoEffect = NoSql() if sql_folder else NoEffect()
    subscriber = TimedSubscriber(bootstrap=bootstrap, topic=topic, group=group,
                                 handler=handler, engine=engine, batch=BATCH, ordered=ordered)
    try:
        if profile:
            profile.enable()
        subscriber.run(until_caught_up=True, poll_ms=50)
        if profile:
            profile.disable()
        ended = time.perf_counter()
        assert subscriber.assigned_at is not None
        return ended - subscriber.assigned_at, subscriber.stats.handled
    finally:
        subscriber.close()
        if engine is not None:
            engine.dispose()


# -- profiles ------------------------------------------------------------------------------
def top_tottime(profile: cProfile.Profile, top: int = 15) -> tuple[str, list[dict[str, Any]]]:
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


def profiles(url: str, bootstrap: str, partitions: int, folder: Path,
             which: set[str]) -> dict[str, Any]:
    """cProfile the runs below the aim, over the store published once (main thread)."""
    out: dict[str, Any] = {}
    topic = new_topic(bootstrap, "profile", partitions)
    profile = cProfile.Profile()
    seconds, published = publisher_run(url, bootstrap, topic, 1, profile)
    if "publisher" in which:
        text, rows = top_tottime(profile)
        out["publisher"] = {"events": published, "seconds": round(seconds, 2), "top": rows}
        console.rule("profile: Publisher (top 15 by tottime)")
        console.print(text, highlight=False)
    for name, sql, ordered in (("runtime_effect", None, False), ("runtime_sql", folder, False),
                               ("runtime_sql_ordered", folder, True)):
        if name not in which:
            continue
        profile = cProfile.Profile()
        seconds, handled = runtime_run(bootstrap, topic, sql, profile, ordered=ordered)
        text, rows = top_tottime(profile)
        out[name] = {"events": handled, "seconds": round(seconds, 2), "top": rows}
        console.rule(f"profile: {name} (top 15 by tottime)")
        console.print(text, highlight=False)
    return out


# -- one run -----------------------------------------------------------------------------
def run(events: int = 200_000, *, store_events: int | None = None, partitions: int = 6,
        repeats: int = 3, profile: bool = True, out: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sijil-bench-kafka-") as name:
        folder = Path(name)
        url, simulation = workload(min(events, store_events or events), folder)
        records = encoded_records(url)
        with broker(folder) as (bootstrap, where):
            console.print(f"broker: {where}")
            results, count, _ = measure(url, bootstrap, records, events, partitions, folder,
                                        repeats)
            ratios = {r["name"]: r["ratio"] for r in results
                      if r["ratio"] is not None and not r["name"].startswith("raw")}
            below = {name for name, ratio in ratios.items() if ratio < AIM}
            profiled = (profiles(url, bootstrap, partitions, folder, below)
                        if profile and below else {})
    figures = {
        "events": count, "events_asked": events, "partitions": partitions,
        "broker": where, "simulation": simulation,
        "record_bytes_mean": round(sum(len(r[1]) for r in records) / len(records)),
        "producer_settings": PRODUCER_SETTINGS, "max_poll_records": BATCH,
        "repeats": repeats, "results": results, "aim_ratio": AIM,
        "aim_met": {name: ratio >= AIM for name, ratio in ratios.items()},
        "profiles": profiled,
    }
    report(results)
    path = write_results("kafka_log", figures, out)
    console.print(f"figures written to {path}")
    return figures


RUNS: dict[str, tuple[str, str | None]] = {  # name: (what, baseline)
    "raw_produce": ("kafka-python idempotent producer, pre-encoded records", None),
    "publisher": ("Publisher: store log -> topic, a transaction a page (5,000)",
                  "raw_produce"),
    "raw_produce_transactional": ("raw, in transactions of 5,000 (reference; round 1)",
                                  "raw_produce"),
    "raw_consume": ("kafka-python consumer, read_committed, check_crcs, no decoding", None),
    "runtime_effect": ("Subscriber, no-op effect handler, Kafka offsets", "raw_consume"),
    "runtime_sql": ("Subscriber, no-op SQL handler, offsets in SQLite", "raw_consume"),
    "runtime_sql_ordered": ("the same in position order (ordered=True, projections)",
                            "raw_consume"),
}


def measure(url: str, bootstrap: str, records: list[Record], events: int, partitions: int,
            folder: Path, repeats: int) -> tuple[list[dict[str, Any]], int, str]:
    """Every run once a round, raw beside ours; a warm-up produce first of all (the
    broker's JIT). Returns the rows, the events a run, and the last Publisher topic."""
    rates: dict[str, list[float]] = {name: [] for name in RUNS}
    count, topic = 0, ""

    def note(name: str, seconds: float, n: int) -> None:
        rates[name].append(rate(n, seconds))
        console.print(f"  {name}: {rate(n, seconds):,.0f} events/s ({n:,} in {seconds:.1f} s)")

    with console.status("warming the broker up …"):
        raw_produce(bootstrap, new_topic(bootstrap, "warmup", partitions), records,
                    min(len(records), 20_000))
    console.print(f"store: {len(records):,} events; publishing at least {events:,}")
    for round_ in range(1, repeats + 1):
        console.rule(f"round {round_} of {repeats}")
        topic = new_topic(bootstrap, "events", partitions)
        seconds, count = publisher_run(url, bootstrap, topic, events)
        note("raw_produce", raw_produce(bootstrap, new_topic(bootstrap, "raw", partitions),
                                        records, count), count)
        note("publisher", seconds, count)
        if round_ == 1:
            note("raw_produce_transactional",
                 raw_produce(bootstrap, new_topic(bootstrap, "rawtx", partitions), records,
                             count, transaction=5000), count)
        note("raw_consume", *raw_consume(bootstrap, topic))
        note("runtime_effect", *runtime_run(bootstrap, topic, None))
        note("runtime_sql", *runtime_run(bootstrap, topic, folder))
        note("runtime_sql_ordered", *runtime_run(bootstrap, topic, folder, ordered=True))
    rows = []
    for name, (what, baseline) in RUNS.items():
        mine = rates[name]
        base = rates[baseline] if baseline else []
        ratios = [a / b for a, b in zip(mine, base, strict=False) if b]
        rows.append({"name": name, "what": what, "events": count, "baseline": baseline,
                     "events_per_s": round(statistics.median(mine)),
                     "events_per_s_rounds": [round(r) for r in mine],
                     "ratio": round(statistics.median(ratios), 3) if ratios else None,
                     "ratio_rounds": [round(r, 3) for r in ratios]})
    return rows, count, topic


def report(results: list[dict[str, Any]]) -> None:
    print_table("The Kafka log: ours beside raw kafka-python (same run, same broker, "
                "same records; medians over the rounds)",
                ("run", "events", "events/s", "per round", "baseline", "ratio",
                 "aim ≥ 60%"),
                [(r["name"], r["events"], r["events_per_s"],
                  " ".join(f"{x:,}" for x in r["events_per_s_rounds"]), r["baseline"],
                  r["ratio"],
                  None if r["ratio"] is None or r["name"].startswith("raw")
                  else ("met" if r["ratio"] >= AIM else "NOT met"))
                 for r in results])


app = typer.Typer(add_completion=False)


@app.command()
def main(
    events: Annotated[int, typer.Option(help="events to publish and consume")] = 200_000,
    store_events: Annotated[int | None, typer.Option(
        help="size the store for this many events (default: --events); the store "
             "is re-published until --events are out")] = None,
    partitions: Annotated[int, typer.Option(help="partitions of each topic")] = 6,
    repeats: Annotated[int, typer.Option(min=1, help="rounds of every run (medians)")] = 3,
    profile: Annotated[bool, typer.Option(
        help="cProfile the runs below the aim (top 15 by tottime)")] = True,
    out: Annotated[Path | None, typer.Option(
        help=f"results file (default {RESULTS.name}/kafka_log.json)")] = None,
) -> None:
    """Publisher and runtime rates beside raw kafka-python produce and consume."""
    run(events, store_events=store_events, partitions=partitions, repeats=repeats,
        profile=profile, out=out)


if __name__ == "__main__":
    app()
