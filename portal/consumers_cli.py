"""`sijil consumers status`: every consumer group reading the events topic, and its lag.

For each group with committed offsets on the events topic (``SIJIL_EVENTS_TOPIC`` at
``SIJIL_KAFKA_BOOTSTRAP``): per partition, the committed offset, the end offset (the
high watermark) and the lag between them. Sijil's SQL handlers resume from offsets kept
beside their writes, but commit to Kafka too, so the figures hold for them as well. On
a transactional topic a group that has read everything can show a lag of 1 a partition:
the commit marker after the last record takes an offset.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from consumers.topics import admin_client
from domain.settings import Settings

consumers_app = typer.Typer(
    help="Consumer groups on the events topic: committed offsets, end offsets, lag.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(width=None if Console().is_terminal else 160)
errors = Console(stderr=True)


@consumers_app.callback()
def consumers_callback() -> None:
    """Consumer groups on the events topic (a group of commands, even with one)."""


@dataclass
class PartitionLag:
    partition: int
    committed: int | None  # None: the group committed nothing on this partition yet
    end: int
    lag: int


@dataclass
class GroupLag:
    group: str
    state: str
    members: int
    partitions: list[PartitionLag] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def group_lags(bootstrap: str, topic: str, timeout: float = 15.0) -> list[GroupLag]:
    """Every group with committed offsets on the topic, by name; its partitions' lag."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    admin = admin_client(bootstrap, client_id="sijil-consumers-status",
                         request_timeout_ms=int(timeout * 1000))
    try:
        described = [t for t in admin.describe_topics([topic]) if t.get("error_code", 0) == 0]
        if not described:
            raise LookupError(f"topic {topic} does not exist at {bootstrap}")
        indexes = sorted(p["partition_index"] for p in described[0].get("partitions") or [])
        parts = [TopicPartition(topic, i) for i in indexes]
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in parts})
        starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in parts})
        names = sorted({_group_id(g) for g in admin.list_groups()} - {""})
        committed = admin.list_group_offsets({name: parts for name in names}) if names else {}
        reading = {name: offsets for name, offsets in committed.items()
                   if any(_offset(offsets.get(tp)) is not None for tp in parts)}
        info = admin.describe_groups(sorted(reading)) if reading else {}
    finally:
        admin.close()
    out = []
    for name in sorted(reading):
        about = _description(info, name)
        group = GroupLag(name, str(about.get("group_state") or about.get("state") or "?"),
                         len(about.get("members") or []))
        for tp in parts:
            mark = _offset(reading[name].get(tp))
            end = int(ends[tp].offset)
            base = mark if mark is not None else int(starts[tp].offset)
            group.partitions.append(PartitionLag(tp.partition, mark, end, max(0, end - base)))
        out.append(group)
    return out


def _group_id(listed: Any) -> str:
    if isinstance(listed, dict):
        return str(listed.get("group_id") or "")
    if isinstance(listed, tuple | list):
        return str(listed[0])
    return str(getattr(listed, "group_id", listed))


def _offset(found: Any) -> int | None:
    """A committed offset, or None for "nothing committed" (-1 on the wire)."""
    if found is None:
        return None
    offset = int(getattr(found, "offset", found))
    return offset if offset >= 0 else None


def _description(info: Any, name: str) -> dict[str, Any]:
    if isinstance(info, dict):
        found = info.get(name) or {}
        return found if isinstance(found, dict) else {}
    for entry in info or []:
        if isinstance(entry, dict) and entry.get("group_id") == name:
            return entry
    return {}


def _table(topic: str, groups: list[GroupLag]) -> Table:
    table = Table(title=f"consumer groups on {topic}", title_justify="left")
    for name in ("group", "state", "members", "partition", "committed", "end", "lag"):
        table.add_column(name, justify="left" if name in ("group", "state") else "right")
    for group in groups:
        for i, p in enumerate(group.partitions):
            first = i == 0
            table.add_row(group.group if first else "", group.state if first else "",
                          str(group.members) if first else "", str(p.partition),
                          "—" if p.committed is None else f"{p.committed:,}", f"{p.end:,}",
                          f"{p.lag:,}")
        table.add_row("", "", "", "all", "", "", f"[bold]{group.lag:,}[/bold]",
                      end_section=True)
    return table


@consumers_app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")
                       ] = False,
) -> None:
    """Per consumer group on the events topic: committed offset, end offset and lag."""
    settings = Settings()
    bootstrap, topic = settings.kafka_bootstrap, settings.events_topic
    try:
        groups = group_lags(bootstrap, topic)
    except LookupError as error:
        errors.print(f"[red]error[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except Exception as error:  # the admin client's errors: keep them readable
        errors.print(f"[red]error[/red] reading consumer groups at {bootstrap}: {error}",
                     highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps({
            "bootstrap": bootstrap, "topic": topic,
            "groups": [{**asdict(g), "lag": g.lag} for g in groups]}, indent=2))
        return
    if not groups:
        console.print(f"no consumer group has committed offsets on {topic} at {bootstrap}")
        return
    console.print(_table(topic, groups))
