"""`sijil demo`: the main job, end to end on a fresh machine, printed.

A simulated ministry (a few hundred establishments, three months, two leaked
credentials) is ingested into the event store; the per-service outcomes and three
establishments' Nitaqat bands are printed; a real Kafka broker is started, the history
published to it exactly once, and the topic's partitions and a few decoded events shown
before the broker stops. Later stages (projections, the audit) join here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from consumers.broker import LocalBroker
from consumers.inspection import topic_contents
from domain.settings import Settings


def _fresh_home(settings: Settings) -> Path:
    """Start from nothing but keep the Kafka jars, which take a while to fetch."""
    home = settings.home
    LocalBroker.from_settings(settings).stop()
    for name in ("events.sqlite", "projections.sqlite", "requests.jsonl",
                 "leak-labels.jsonl", "plan.json", "kafka/data"):
        target = home / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    home.mkdir(parents=True, exist_ok=True)
    return home


def run_demo(console: Console, *, establishments: int, months: int, seed: int,
             leaks: int) -> int:
    from portal import cli

    settings = Settings()
    home = _fresh_home(settings)
    requests, labels, plan = (home / "requests.jsonl", home / "leak-labels.jsonl",
                              home / "plan.json")
    console.print(Rule(f"1. simulate the ministry: {establishments} establishments, "
                       f"{months} months, {leaks} leaked credentials (seed {seed})"))
    cli.simulate_command(out=requests, establishments=establishments, months=months,
                         seed=seed, leaks=leaks, labels=labels, plan=plan)
    console.print(Rule(f"2. ingest {requests} into the event store"))
    malformed = _exit_code(lambda: cli.ingest_command(file=str(requests), strict=False,
                                                      batch_size=None))
    console.print(Rule("3. three establishments' Nitaqat band, from the event store"))
    cli.nitaqat_command(establishment_ids=None, sample=3, on=None)
    console.print(Rule("4. Kafka: start a real broker, publish every event exactly once"))
    _kafka_stage(console, settings)
    console.print(f"\nEverything is under {home.resolve()}: the requests, the leak labels "
                  "(ground truth, kept apart), the planned counts, the store, the broker.")
    return malformed


def _kafka_stage(console: Console, settings: Settings) -> None:
    from portal import cli, kafka_cli

    kafka_cli.up_command(timeout=90.0)
    try:
        cli.publish_command(follow=False, topic=None, page=5000)
        partitions, samples = topic_contents(settings.kafka_bootstrap, settings.events_topic)
        console.print(_partition_table(settings.events_topic, partitions))
        console.print(_sample_table(samples))
    finally:
        kafka_cli.down_command(timeout=15.0)


def _partition_table(topic: str, partitions: dict[int, tuple[int, int]]) -> Table:
    table = Table(title=f"{topic}: records per partition (read_committed)")
    for name in ("partition", "records", "establishments (keys)"):
        table.add_column(name, justify="right")
    for p, (count, keys) in sorted(partitions.items()):
        table.add_row(str(p), f"{count:,}", f"{keys:,}")
    table.add_row("all", f"{sum(c for c, _ in partitions.values()):,}", "", style="bold")
    return table


def _sample_table(samples: list[dict[str, object]]) -> Table:
    table = Table(title="A few events as a downstream service reads them (decoded)")
    for name in ("position", "event_type", "establishment", "occurred_at (UTC)", "actor",
                 "channel", "payload", "hash"):
        table.add_column(name, no_wrap=name != "payload", overflow="ellipsis")
    for r in samples:
        request: dict[str, object] = r["request"]  # type: ignore[assignment]
        actor: dict[str, object] = request["actor"]  # type: ignore[assignment]
        payload = orjson.dumps(r["payload"]).decode()
        table.add_row(str(r["position"]), str(r["event_type"]), str(r["establishment_id"] or "-"),
                      str(r["occurred_at"])[:19] + "Z", f"{actor['account_id']} ({actor['role']})",
                      str(request["channel"]), payload[:70] + ("…" if len(payload) > 70 else ""),
                      str(r["hash"])[:12] + "…")
    return table


def _exit_code(step: object) -> int:
    try:
        step()  # type: ignore[operator]
    except typer.Exit as stop:
        return int(stop.exit_code or 0)
    return 0
