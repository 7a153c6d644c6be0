"""`sijil replay`: an auditor's time travel over an establishment's history."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from domain.context import parse_iso
from domain.ledger import Ledger
from domain.settings import Settings
from replay.as_of import EstablishmentAsOf, as_of
from replay.history import Cutoff, from_kafka, from_store, version_cutoff

replay_app = typer.Typer(help="Time travel: an establishment as it was, and how it got there.",
                         no_args_is_help=True)
console = Console(width=None if Console().is_terminal else 160)


def _cutoff(ledger: Ledger, number: str, moment: str | None, version: int | None) -> Cutoff:
    if moment and version:
        raise typer.BadParameter("give --as-of or --version, not both")
    if version is not None:
        try:
            return version_cutoff(ledger, number, version)
        except LookupError as error:
            console.print(f"[red]error[/red] {error}")
            raise typer.Exit(code=2) from None
    if moment is None:
        return Cutoff()
    try:
        when = parse_iso(moment)
    except ValueError:
        raise typer.BadParameter("--as-of: an ISO 8601 time, e.g. 2025-03-01T00:00:00Z") from None
    return Cutoff(time=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


@replay_app.command("establishment")
def establishment_command(
    establishment_id: Annotated[str, typer.Argument()],
    as_of_time: Annotated[str | None, typer.Option("--as-of", help="UTC, ISO 8601")] = None,
    version: Annotated[int | None, typer.Option(help="the establishment stream's version")] = None,
    source: Annotated[str, typer.Option(help="store, kafka, or both (and check they agree)")
                      ] = "store",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    steps: Annotated[int, typer.Option(help="timeline rows to print (0: all)")] = 40,
) -> None:
    """The establishment at a moment: workforce, permits, band, and every step up to it —
    who did it, how (channel, session, device, ip), and the outcome."""
    settings = Settings()
    ledger = Ledger(settings.store_url())
    cutoff = _cutoff(ledger, establishment_id, as_of_time, version)
    results = {}
    if source in ("store", "both"):
        results["store"] = as_of(establishment_id, from_store(ledger, establishment_id, cutoff))
    if source in ("kafka", "both"):
        records = from_kafka(settings.kafka_bootstrap, settings.events_topic,
                             establishment_id, cutoff)
        results["kafka"] = as_of(establishment_id, records)
    if not results:
        raise typer.BadParameter("--source: store, kafka or both")
    state = next(iter(results.values()))
    if state.establishment is None:
        console.print(f"[red]error[/red] establishment_id: {establishment_id} has no history "
                      "up to that point")
        raise typer.Exit(code=2)
    agree = len({orjson.dumps(r.__dict__, option=orjson.OPT_SORT_KEYS)
                 for r in results.values()}) == 1
    if as_json:
        typer.echo(orjson.dumps({"cutoff": cutoff.__dict__, "sources_agree": agree,
                                 **state.__dict__}, option=orjson.OPT_INDENT_2).decode())
    else:
        _print(state, cutoff, steps)
        if len(results) > 1:
            console.print(f"store and Kafka {'agree' if agree else '[red]DISAGREE[/red]'}: "
                          f"{state.events:,} events up to position {state.last_position:,}")
    if not agree:
        raise typer.Exit(code=1)


def _print(s: EstablishmentAsOf, cutoff: Cutoff, steps: int) -> None:
    e: dict[str, Any] = s.establishment or {}
    when = cutoff.time or (f"position {cutoff.position}" if cutoff.position else "now")
    summary = Table(title=f"Establishment {s.establishment_id} as of {when}", show_header=False)
    summary.add_column("", style="bold")
    summary.add_column("")
    statuses = Counter(w["status"] for w in s.workers)
    for k, v in {"name": e.get("name"), "activity": e.get("activity"),
                 "band": f"{e.get('band')} (since {e.get('band_since')})",
                 "headcount": f"{e.get('headcount')} ({e.get('size')}): {e.get('saudis')} "
                              f"counted as Saudi, {e.get('expatriates')} expatriates",
                 "Saudization": f"{(e.get('percentage_bp') or 0) / 100:.2f}%",
                 "workers by status": ", ".join(f"{k} {n}" for k, n in statuses.items()),
                 "permits valid then": sum(1 for p in s.permits
                                           if not cutoff.time or
                                           p["valid_until"] >= cutoff.time[:10]),
                 "events replayed": f"{s.events:,} (to position {s.last_position:,})"}.items():
        summary.add_row(k, str(v))
    console.print(summary)
    console.print(_timeline(s.timeline, steps))


def _timeline(rows: list[dict[str, Any]], steps: int) -> Table:
    shown = rows if steps == 0 else rows[-steps:]
    table = Table(title=f"Timeline: {len(rows):,} requests (last {len(shown):,} shown)")
    for name in ("occurred_at (UTC)", "service", "outcome", "actor (role, for)", "channel",
                 "session", "device", "ip"):
        table.add_column(name)
    for t in shown:
        outcome = t["outcome"] if t["outcome"] == "accepted" else f"refused: {t['rule']}"
        actor = f"{t['actor_account_id']} ({t['role']}"
        actor += f", for {t['on_behalf_of']})" if t["on_behalf_of"] else ")"
        table.add_row(t["occurred_at"], t["service"], outcome, actor, t["channel"],
                      t["session_id"], t["device_id"], t["ip"])
    return table
