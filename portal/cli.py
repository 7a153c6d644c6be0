"""The `sijil` command line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console

from domain.establishment import Establishment
from domain.identifiers import establishment_stream
from domain.ingest import IngestReport, Malformed, ingest
from domain.ledger import Ledger
from domain.nitaqat import Assessment, assess
from domain.settings import Settings
from portal import read_cli
from portal.audit_cli import audit_app
from portal.consumers_cli import consumers_app
from portal.counterfactual_cli import counterfactual_command, remediate_command
from portal.kafka_cli import kafka_app
from portal.progress import progress_bar
from portal.rebuild_cli import rebuild_command
from portal.replay_cli import replay_app
from portal.tables import band_table, outcome_table
from portal.verify_cli import digest_command, verify_command

app = typer.Typer(help="Sijil (سجل): the labour ministry's e-services ledger.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(kafka_app, name="kafka")
app.add_typer(replay_app, name="replay")
app.add_typer(consumers_app, name="consumers")
app.add_typer(audit_app, name="audit")
audit_app.command("counterfactual")(counterfactual_command)
audit_app.command("remediate")(remediate_command)
app.command("stats")(read_cli.stats_command)
app.command("establishment")(read_cli.establishment_command)
app.command("worker")(read_cli.worker_command)
app.command("verify")(verify_command)
app.command("digest")(digest_command)
app.command("rebuild")(rebuild_command)
# Tables are read in logs and CI output too: wide enough not to fold Arabic labels.
console = Console(width=None if Console().is_terminal else 160)
errors = Console(stderr=True)


def open_ledger(settings: Settings) -> Ledger:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Ledger(settings.store_url())


def _lines(stream: IO[bytes], advance: Callable[[int], object] | None = None
           ) -> Iterator[bytes]:
    for line in stream:
        if advance is not None:
            advance(len(line))
        yield line


@app.command("ingest")
def ingest_command(
    file: Annotated[str, typer.Argument(help="JSON Lines of requests, or - for stdin")],
    strict: Annotated[bool, typer.Option(help="stop at the first malformed line")] = False,
    batch_size: Annotated[int | None, typer.Option(help="requests a transaction")] = None,
) -> None:
    """Validate, authorize and decide every request; record accepted and refused alike."""
    settings = Settings()
    ledger = open_ledger(settings)
    size = batch_size or settings.ingest_batch_size
    report = _run_ingest(ledger, file, size, strict)
    console.print(outcome_table(report))
    console.print(f"{report.decided:,} requests decided, {report.events:,} events recorded, "
                  f"{len(report.malformed):,} malformed lines not recorded "
                  f"(store: {settings.store_url()})")
    if report.malformed:
        raise typer.Exit(code=1)


def _report_malformed(bad: Malformed) -> None:
    errors.print(f"[red]malformed[/red] {bad}", highlight=False, soft_wrap=True)


def _run_ingest(ledger: Ledger, file: str, size: int, strict: bool) -> IngestReport:
    if file == "-":
        return ingest(ledger, sys.stdin.buffer, batch_size=size, strict=strict,
                      on_malformed=_report_malformed)
    path = Path(file)
    if not path.is_file():
        errors.print(f"[red]error[/red] file: {file} does not exist")
        raise typer.Exit(code=2)
    with progress_bar(errors) as bar, path.open("rb") as stream:
        task = bar.add_task(f"ingest {path.name} (bytes)", total=path.stat().st_size)
        return ingest(ledger, _lines(stream, lambda n: bar.advance(task, n)), batch_size=size,
                      strict=strict, on_malformed=_report_malformed)


@app.command("simulate")
def simulate_command(
    out: Annotated[Path, typer.Option(help="where the requests go (JSON Lines)")],
    establishments: Annotated[int, typer.Option(min=1)] = 300,
    months: Annotated[int, typer.Option(min=1, max=120)] = 3,
    seed: Annotated[int, typer.Option()] = 1,
    leaks: Annotated[int, typer.Option(min=0, help="leaked-credential campaigns")] = 0,
    labels: Annotated[Path | None, typer.Option(help="ground truth of the leaks")] = None,
    plan: Annotated[Path | None, typer.Option(help="planned count of each service")] = None,
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD")] = "2025-01-01",
) -> None:
    """Write a deterministic, realistic ministry history of requests."""
    from simulator import simulate

    with progress_bar(errors) as bar:
        task = bar.add_task("simulate (requests)", total=None)
        summary = simulate(establishments=establishments, months=months, seed=seed, out=out,
                           leaks=leaks, labels=labels, plan=plan,
                           start=date.fromisoformat(start),
                           progress=lambda n: bar.update(task, completed=n))
    console.print(f"{summary.requests:,} requests written to {out}: "
                  f"{summary.establishments:,} establishments, {summary.workers:,} workers, "
                  f"{summary.accounts:,} accounts, {summary.campaigns} leak campaigns, "
                  f"from {summary.first_occurred_at} to {summary.last_occurred_at}")


@app.command("nitaqat")
def nitaqat_command(
    establishment_ids: Annotated[list[str] | None, typer.Argument()] = None,
    sample: Annotated[int, typer.Option(help="when no ids: this many, varied")] = 3,
    on: Annotated[str | None, typer.Option(
        help="the day to assess, YYYY-MM-DD (default: the establishment's last activity)")] = None,
) -> None:
    """The current Nitaqat band of establishments, as the event store decides it."""
    ledger = open_ledger(Settings())
    ids = establishment_ids or _varied_establishments(ledger, sample)
    day = date.fromisoformat(on) if on else None
    rows = []
    for number in ids:
        est = ledger.load(establishment_stream(number))
        if not isinstance(est, Establishment):
            errors.print(f"[red]error[/red] establishment_id: no establishment {number}")
            raise typer.Exit(code=2)
        rows.append((number, est.name, est.activity, _assess(ledger, est, day)))
    console.print(band_table(rows))


def _assess(ledger: Ledger, est: Establishment, day: date | None) -> Assessment:
    when = day or date.fromisoformat(est.last_occurred_at[:10])
    return assess(workforce=est.workforce, samples=est.samples, activity=est.activity,
                  day=max(when, date.fromisoformat(est.opened_on)),
                  owner_counts_as_saudi=est.owner_counts_as_saudi, table=ledger.table,
                  rules=ledger.rules)


def _varied_establishments(ledger: Ledger, count: int, scan: int = 5000) -> list[str]:
    """The largest establishment of each band first, so a sample shows the range."""
    created = ledger.recorder.select_notifications(start=1, limit=scan,
                                                   topics=[_created_topic()])
    found: list[Establishment] = []
    for note in created:
        est = ledger.load(note.originator_id)  # type: ignore[arg-type]
        if isinstance(est, Establishment):
            found.append(est)
    found.sort(key=lambda e: (-(e.saudis + e.expatriates), e.file_number))
    chosen: list[str] = []
    for band in ("platinum", "high_green", "medium_green", "low_green", "red"):
        chosen += [e.file_number for e in found if e.band == band][:1]
    chosen += [e.file_number for e in found if e.file_number not in chosen]
    return chosen[:count]


def _created_topic() -> str:
    from eventsourcing.utils import get_topic

    return get_topic(Establishment.Created)


@app.command("publish")
def publish_command(
    follow: Annotated[bool, typer.Option(help="keep publishing as the store grows")] = False,
    topic: Annotated[str | None, typer.Option(help="default: SIJIL_EVENTS_TOPIC")] = None,
    page: Annotated[int, typer.Option(min=1, help="events a Kafka transaction")] = 5000,
) -> None:
    """Publish the store's events, in order and exactly once, to the events topic."""
    import signal
    import threading

    from consumers.publisher import Publisher

    settings = Settings()
    ledger = open_ledger(settings)
    name = topic or settings.events_topic
    publisher = Publisher(ledger, settings.kafka_bootstrap, name, page=page)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pending = ledger.recorder.max_notification_id() or 0
    with progress_bar(errors) as bar:
        task = bar.add_task(f"publish to {name} (events)", total=max(
            0, pending - publisher.position))
        advance = lambda n: bar.update(task, completed=n)  # noqa: E731
        if follow:
            total = publisher.follow(stop, progress=advance)
        else:
            total = publisher.publish_pending(advance).published
    publisher.close()
    console.print(f"{total:,} events published to {name} after position "
                  f"{publisher.position - total:,}; the topic now ends at position "
                  f"{publisher.position:,}")


@app.command("project")
def project_command(
    follow: Annotated[bool, typer.Option(help="keep projecting as events arrive")] = False,
    topic: Annotated[str | None, typer.Option(help="default: SIJIL_EVENTS_TOPIC")] = None,
) -> None:
    """Run the projection runners: the events topic into the read models (SQL)."""
    import signal
    import threading

    from consumers.projecting import run_projections
    from consumers.projection_runner import OutdatedReadModels

    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with console.status("projecting the events topic ..."):
            stats = run_projections(url=settings.read_models_url(),
                                    bootstrap=settings.kafka_bootstrap,
                                    topic=topic or settings.events_topic, stop=stop,
                                    follow=follow)
    except OutdatedReadModels as error:
        console.print(f"[red]error[/red] {error}")
        raise typer.Exit(code=2) from error
    console.print(f"{stats.handled:,} events projected in {stats.batches:,} batches, "
                  f"{stats.dead_lettered:,} dead-lettered (read models: "
                  f"{settings.read_models_url()})")


@app.command("demo")
def demo_command(
    establishments: Annotated[int, typer.Option(min=1)] = 300,
    months: Annotated[int, typer.Option(min=1)] = 3,
    seed: Annotated[int, typer.Option()] = 7,
    leaks: Annotated[int, typer.Option(min=0)] = 2,
) -> None:
    """Simulate, ingest and report: what `make demo` runs."""
    from portal.demo import run_demo

    if run_demo(console, establishments=establishments, months=months, seed=seed,
                leaks=leaks):
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
