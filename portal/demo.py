"""`sijil demo`: the main job, end to end on a fresh machine, printed.

A simulated ministry (a few hundred establishments, three months, two leaked
credentials) is ingested into the event store; the per-service outcomes and three
establishments' Nitaqat bands are printed; a real Kafka broker is started, the history
published to it exactly once, and the topic's partitions and a few decoded events shown
then projected into SQL read models — the statistics table, one establishment's band
history, the Nitaqat alerts — and the fraud analyst's story told: the detector's alerts,
the most alerted credential's blast radius, its counterfactual and the remediation dry
run; then the broker stops.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    _kafka_stage(console, settings, lambda: _projection_stage(console))
    console.print(f"\nEverything is under {home.resolve()}: the requests, the leak labels "
                  "(ground truth, kept apart), the planned counts, the store, the broker.")
    return malformed


def _kafka_stage(console: Console, settings: Settings, then: Callable[[], None]) -> None:
    from portal import cli, kafka_cli

    kafka_cli.up_command(timeout=90.0)
    try:
        cli.publish_command(follow=False, topic=None, page=5000)
        partitions, samples = topic_contents(settings.kafka_bootstrap, settings.events_topic)
        console.print(_partition_table(settings.events_topic, partitions))
        console.print(_sample_table(samples))
        then()
    finally:
        kafka_cli.down_command(timeout=15.0)


def _projection_stage(console: Console) -> None:
    from portal import cli, read_cli
    from projections import queries

    console.print(Rule("5. projections: the events topic into SQL read models"))
    cli.project_command(follow=False, topic=None)
    read_cli.stats_command(as_json=False, month=None)
    engine = read_cli._engine()
    chosen = _establishment_with_history(engine)
    if chosen:
        console.print(Rule(f"6. establishment {chosen}: its band history and state now"))
        read_cli.establishment_command(establishment_id=chosen, on=None)
    console.print(_alerts_table(queries.alerts(engine, limit=12)))
    _audit_stage(console)


def _audit_stage(console: Console) -> None:
    """The fraud analyst's story: which credential the detector flags most, what it did,
    what the ledger would be without it, and the reversals that would undo it."""
    from collections import Counter

    from portal import audit_cli
    from portal.counterfactual_cli import counterfactual_command, remediate_command

    console.print(Rule("7. the fraud analyst: alerts, a leaked credential's blast radius, "
                       "its counterfactual, the remediation"))
    audit_cli.alerts_command(limit=10, account=None, as_json=False)
    alerts = audit_cli.latest_alerts(Settings().read_models_url(), 1000)
    if not alerts:
        console.print("No fraud alerts were raised.")
        return
    scores: Counter[str] = Counter()
    for a in alerts:
        scores[a["account_id"]] += a["score"]
    account = scores.most_common(1)[0][0]
    mine = [a for a in alerts if a["account_id"] == account]
    since = min(a["occurred_at"] for a in mine)
    devices = sorted({a["device_id"] for a in mine})
    console.print(f"The most alerted account is {account}: its credential's requests since "
                  f"{since}, the suspicious ones (from {', '.join(devices)}):")
    audit_cli.credential_command(account_id=account, since=since, until=None,
                                 suspicious=True, as_json=False)
    counterfactual_command(account=account, since=since, devices=devices, sessions=None,
                           establishment=None, as_json=False)
    remediate_command(account=account, since=since, by="staff:aud-demo", devices=devices,
                      sessions=None, apply=False, reason="leaked credential (demo)")


def _establishment_with_history(engine: Any) -> str | None:
    """The establishment whose band changed most: the most instructive history."""
    from sqlalchemy import func, select

    from projections.establishments import BAND_HISTORY

    with engine.connect() as conn:
        row = conn.execute(select(BAND_HISTORY.c.establishment_id, func.count().label("n"))
                           .group_by(BAND_HISTORY.c.establishment_id)
                           .order_by(func.count().desc(), BAND_HISTORY.c.establishment_id)
                           .limit(1)).first()
    return str(row[0]) if row else None


def _alerts_table(alerts: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Nitaqat alerts, latest {len(alerts)} (also on sijil.alerts.nitaqat.v1)")
    for name in ("occurred_at (UTC)", "establishment", "alert", "band", "Saudization",
                 "red below", "margin"):
        table.add_column(name)
    for a in alerts:
        threshold = a["red_threshold_bp"]
        table.add_row(a["occurred_at"], a["establishment_id"], a["kind"], a["band"] or "-",
                      f"{a['percentage_bp'] / 100:.2f}%",
                      f"{threshold / 100:.2f}%" if threshold is not None else "-",
                      f"{a['margin_bp'] / 100:.2f} points")
    return table


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
