"""`sijil rebuild PROJECTION [PROJECTION...] | --all`: read models rebuilt from offset 0.

The rows are folded into shadow tables while readers and the runner keep the old ones,
then swapped in with the projections' offsets in one transaction (replay/rebuild.py).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from consumers.projection_runner import GROUP
from domain.settings import Settings
from portal.progress import progress_bar
from projections.catalog import ALL, BY_NAME
from replay.rebuild import RebuildError, RebuildReport, rebuild_projections, rebuild_set

console = Console(width=None if Console().is_terminal else 160)
errors = Console(stderr=True)


def rebuild_command(
    projections: Annotated[list[str] | None, typer.Argument(
        help=f"projections to rebuild: {', '.join(p.name for p in ALL)}")] = None,
    every: Annotated[bool, typer.Option("--all", help="rebuild every projection")] = False,
    topic: Annotated[str | None, typer.Option(help="default: SIJIL_EVENTS_TOPIC")] = None,
    group: Annotated[str, typer.Option(help="the projection runners' group")] = GROUP,
    batch: Annotated[int, typer.Option(min=1, help="records a transaction")] = 5000,
    processes: Annotated[int, typer.Option(
        min=1, help="build the independent parts in this many processes at once")] = 1,
) -> None:
    """Rebuild read models from Kafka offset 0 into shadow tables, then swap them in
    atomically; a projection is rebuilt with those it reads and those that read it."""
    names = _names(projections or [], every)
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    name = topic or settings.events_topic
    chosen = [p.name for p in rebuild_set(names)]
    extra = sorted(set(chosen) - set(names))
    if extra:
        console.print(f"also rebuilding {', '.join(extra)}: they read, or are read by, "
                      f"{', '.join(names)}")
    with progress_bar(errors) as bar:
        task = bar.add_task(f"rebuild {', '.join(chosen)} from {name} (records)", total=None)
        try:
            report = rebuild_projections(
                url=settings.read_models_url(), bootstrap=settings.kafka_bootstrap,
                topic=name, names=names, group=group, batch=batch, processes=processes,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
        except RebuildError as error:
            errors.print(f"[red]error[/red] {error}")
            raise typer.Exit(code=1) from None
    console.print(report_table(report))
    console.print(f"{report.folded:,} events folded in {report.build_seconds:.1f} s, swapped "
                  f"in {report.swap_seconds:.2f} s ({report.caught_up:,} folded during the "
                  f"swap to reach the runner); {report.undecodable:,} undecodable and "
                  f"{report.failed:,} refused by a fold, left out as the runner leaves them; "
                  f"offsets now {_offsets(report.offsets)} (read models: "
                  f"{settings.read_models_url()})")


def _names(projections: list[str], every: bool) -> list[str]:
    if every and projections:
        raise typer.BadParameter("name projections or give --all, not both")
    if every:
        return [p.name for p in ALL]
    if not projections:
        raise typer.BadParameter("name at least one projection, or give --all")
    unknown = sorted(set(projections) - set(BY_NAME))
    if unknown:
        raise typer.BadParameter(f"unknown projection {', '.join(unknown)}; known: "
                                 f"{', '.join(p.name for p in ALL)}")
    return list(dict.fromkeys(projections))


def _offsets(offsets: dict[int, int]) -> str:
    return ", ".join(f"{p}:{o:,}" for p, o in sorted(offsets.items())) or "none"


def report_table(report: RebuildReport) -> Table:
    table = Table(title="rebuilt and swapped in", title_justify="left")
    table.add_column("projection")
    table.add_column("table")
    table.add_column("rows", justify="right")
    by_table = {t.name: p.name for p in ALL for t in p.tables}
    for name, rows in report.rows.items():
        table.add_row(by_table.get(name, "?"), name, f"{rows:,}")
    return table
