"""`sijil verify` and `sijil digest`: what an auditor runs to prove nothing was altered.

`sijil verify` checks every stream's hash chain in the event store and, unless
--no-topic, on the events topic (against the store, and the publisher's digest records);
with --digest FILE it also recomputes the store's digest at a digest record the auditor
kept. Exit status: 0 intact, 1 a problem or a digest mismatch, 2 it could not check.
`sijil digest` prints the store's current digest record (JSON) for the auditor to keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from kafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from domain.integrity import ChainProblem
from domain.ledger import Ledger
from domain.settings import Settings
from portal.progress import progress_bar
from replay.digests import check_digest, compute_digest, load_digest
from replay.verify import Report, verify_store, verify_topic

console = Console(width=None if Console().is_terminal else 160)
errors = Console(stderr=True)
SHOWN = 200  # problem rows printed; the summary counts them all


def problem_table(problems: list[tuple[str, ChainProblem]]) -> Table:
    table = Table(title="Integrity problems")
    for name in ("where", "stream", "version", "position", "what"):
        table.add_column(name, justify="right" if name in ("version", "position") else "left")
    for where, p in problems[:SHOWN]:
        table.add_row(where, p.stream, str(p.version),
                      "" if p.position is None else f"{p.position:,}", p.problem)
    if len(problems) > SHOWN:
        table.caption = f"the first {SHOWN:,} of {len(problems):,}"
    return table


def verify_command(
    topic: Annotated[bool, typer.Option(
        help="check the events topic too (--no-topic: the store only)")] = True,
    digest: Annotated[Path | None, typer.Option(
        help="a digest record (JSON) kept earlier: the store must still give it")] = None,
) -> None:
    """Verify every stream's hash chain in the event store and on the events topic."""
    settings = Settings()
    ledger = Ledger(settings.store_url())
    kept = None
    if digest is not None:
        try:
            kept = load_digest(digest)
        except (OSError, ValueError) as error:
            errors.print(f"[red]error[/red] --digest: {error}")
            raise typer.Exit(code=2) from None
    reports = [_verify_store(ledger, kept["position"] if kept else None)]
    if topic:
        reports.append(_verify_topic(settings, ledger))
    problems = [(r.source, p) for r in reports for p in r.problems]
    if problems:
        console.print(problem_table(problems))
    for report in reports:
        for note in report.notes:
            console.print(f"[yellow]note[/yellow] {report.source}: {note}")
        style = "green" if report.ok else "red"
        console.print(f"[{style}]{report.summary()}[/{style}]")
    mismatch = []
    if kept is not None:
        recomputed = reports[0].digest or compute_digest(ledger, kept["position"])
        mismatch = check_digest(kept, recomputed)
        for line in mismatch:
            console.print(f"[red]digest mismatch[/red] {line}")
        if not mismatch:
            console.print(f"[green]digest matches[/green] at position {kept['position']:,} "
                          f"({kept['events']:,} events): {kept['digest']}")
    if problems or mismatch:
        raise typer.Exit(code=1)


def _verify_store(ledger: Ledger, digest_at: int | None) -> Report:
    total = ledger.recorder.max_notification_id() or 0
    with progress_bar(errors) as bar:
        task = bar.add_task("verify the store (events)", total=total)
        return verify_store(ledger, lambda n: bar.update(task, completed=n),
                            digest_at=digest_at)


def _verify_topic(settings: Settings, ledger: Ledger) -> Report:
    total = ledger.recorder.max_notification_id() or 0
    try:
        with progress_bar(errors) as bar:
            task = bar.add_task(f"verify {settings.events_topic} (events)", total=total)
            return verify_topic(settings.kafka_bootstrap, settings.events_topic, ledger,
                                progress=lambda n: bar.update(task, completed=n))
    except (KafkaError, RuntimeError, OSError) as error:  # no broker or topic: no verdict
        errors.print(f"[red]error[/red] the topic {settings.events_topic} at "
                     f"{settings.kafka_bootstrap} could not be read ({error}); "
                     f"--no-topic checks the store alone")
        raise typer.Exit(code=2) from None


def digest_command(
    position: Annotated[int | None, typer.Option(
        min=0, help="digest up to this position (default: the store's last)")] = None,
    out: Annotated[Path | None, typer.Option(help="also write the record to this file")
                   ] = None,
) -> None:
    """Print the store's digest record (JSON): keep it, and `sijil verify --digest` later."""
    settings = Settings()
    record = compute_digest(Ledger(settings.store_url()), position, settings.events_topic)
    text = orjson.dumps(record).decode()
    if out is not None:
        out.write_text(text + "\n")
    typer.echo(text)
