"""`sijil demo`: the main job, end to end on a fresh machine, printed.

Today: a simulated ministry (a few hundred establishments, three months, two leaked
credentials) ingested into the event store, the per-service outcomes and three
establishments' Nitaqat bands. Later stages (Kafka, projections, the audit) join here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from domain.settings import Settings


def run_demo(console: Console, *, establishments: int, months: int, seed: int,
             leaks: int) -> int:
    from portal import cli

    settings = Settings()
    home = settings.home
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    requests, labels, plan = (home / "requests.jsonl", home / "leak-labels.jsonl",
                              home / "plan.json")
    console.print(Rule(f"1. simulate the ministry: {establishments} establishments, "
                       f"{months} months, {leaks} leaked credentials (seed {seed})"))
    cli.simulate_command(out=requests, establishments=establishments, months=months,
                         seed=seed, leaks=leaks, labels=labels, plan=plan)
    console.print(Rule(f"2. ingest {requests} into the event store"))
    malformed = _ingest(cli, requests)
    console.print(Rule("3. three establishments' Nitaqat band, from the event store"))
    cli.nitaqat_command(establishment_ids=None, sample=3, on=None)
    console.print(f"\nEverything is under {Path(home).resolve()}: the requests, the leak "
                  "labels (ground truth, kept apart), the planned counts and the store.")
    return malformed


def _ingest(cli: object, requests: Path) -> int:
    import typer

    try:
        cli.ingest_command(file=str(requests), strict=False, batch_size=None)  # type: ignore[attr-defined]
    except typer.Exit as stop:
        return int(stop.exit_code or 0)
    return 0
