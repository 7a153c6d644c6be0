"""`sijil kafka up|down|status`: the local development broker and Sijil's topics.

The broker runs from ``$SIJIL_HOME/kafka`` on 127.0.0.1:``SIJIL_KAFKA_PORT`` (19092);
see consumers/broker.py. ``up`` is idempotent: run it as often as you like.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from consumers.broker import BrokerError, LocalBroker
from consumers.topics import TopicState, ensure_topics, topic_offsets
from domain.settings import Settings

kafka_app = typer.Typer(
    help="The local Kafka broker (KRaft, one node) and Sijil's topics.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(width=None if Console().is_terminal else 160)
errors = Console(stderr=True)


def _broker(settings: Settings) -> LocalBroker:
    return LocalBroker.from_settings(settings)


def _fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[red]error[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def _topics_table(states: Sequence[TopicState]) -> Table:
    table = Table(title="Sijil's topics")
    for name in ("topic", "partitions", "replicas", "retention.ms", "cleanup.policy",
                 "min.insync.replicas", "state", "holds"):
        table.add_column(name, justify="right" if name in ("partitions", "replicas") else "left")
    for s in states:
        state = "created" if s.created else "existed"
        if s.drift:
            state = "[yellow]drift: " + "; ".join(s.drift) + "[/yellow]"
        table.add_row(s.name, str(s.partitions), str(s.replication_factor),
                      s.configs.get("retention.ms", "?"), s.configs.get("cleanup.policy", "?"),
                      s.configs.get("min.insync.replicas", "?"), state, s.purpose)
    return table


def _warn_if_elsewhere(settings: Settings, broker: LocalBroker) -> None:
    if settings.kafka_bootstrap != broker.bootstrap:
        errors.print(
            f"[yellow]note[/yellow] SIJIL_KAFKA_BOOTSTRAP is {settings.kafka_bootstrap}, "
            f"not this local broker ({broker.bootstrap}): Sijil's clients use the former",
            highlight=False,
        )


@kafka_app.command("up")
def up_command(
    timeout: Annotated[float, typer.Option(help="seconds to wait for the broker")] = 60.0,
) -> None:
    """Fetch the jars (once), format (once), start the broker, create the topics."""
    settings = Settings()
    broker = _broker(settings)
    started = time.monotonic()
    try:
        with console.status("fetching the Kafka jars (once) ..."):
            broker.resolve_jars()
        with console.status(f"starting the broker at {broker.bootstrap} ..."):
            fresh = broker.up(timeout=timeout)
        states = ensure_topics(broker.bootstrap, settings)
    except BrokerError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # the admin client's errors: keep them readable
        raise _fail(f"creating topics at {broker.bootstrap}: {exc}") from None
    console.print(_topics_table(states))
    pid = broker.pid()
    what = "started" if fresh else "already running"
    console.print(f"Kafka {what} (pid {pid}) in {time.monotonic() - started:.1f} s. "
                  f"bootstrap: [bold]{broker.bootstrap}[/bold]  log: {broker.log_file}")
    _warn_if_elsewhere(settings, broker)


@kafka_app.command("down")
def down_command(
    timeout: Annotated[float, typer.Option(help="seconds before SIGKILL")] = 15.0,
) -> None:
    """Stop the broker (SIGTERM, then SIGKILL). Its data stays for the next `up`."""
    broker = _broker(Settings())
    started = time.monotonic()
    pid = broker.stop(timeout=timeout)
    if pid is None:
        console.print("Kafka is not running.")
        return
    console.print(f"Kafka stopped (pid {pid}) in {time.monotonic() - started:.1f} s.")


@kafka_app.command("status")
def status_command() -> None:
    """Is the broker running and answering? Its topics, partitions and end offsets.

    Exits 1 when the broker is not running or not answering.
    """
    settings = Settings()
    broker = _broker(settings)
    status = broker.status()
    if not status.running:
        console.print(f"Kafka is not running (home {status.home}).")
        raise typer.Exit(code=1)
    health = "answering" if status.healthy else "[red]not answering[/red]"
    console.print(f"Kafka is running (pid {status.pid}), {health}. "
                  f"bootstrap: [bold]{status.bootstrap}[/bold]  log: {status.log_file}")
    if not status.healthy:
        raise typer.Exit(code=1)
    try:
        offsets = topic_offsets(broker.bootstrap)
    except Exception as exc:
        raise _fail(f"listing topics at {broker.bootstrap}: {exc}") from None
    table = Table(title="Topics")
    table.add_column("topic")
    table.add_column("partitions", justify="right")
    table.add_column("end offsets (sum)", justify="right")
    table.add_column("end offset per partition")
    for name, ends in offsets.items():
        table.add_row(name, str(len(ends)), f"{sum(ends):,}", " ".join(map(str, ends)))
    console.print(table)
    _warn_if_elsewhere(settings, broker)
