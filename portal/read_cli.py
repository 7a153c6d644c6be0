"""Commands that read the projections: statistics, an establishment, a worker."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from domain.catalogue import CATALOGUE
from domain.nitaqat import BAND_LABELS
from domain.settings import Settings
from projections import queries
from projections.database import projections_engine

console = Console(width=None if Console().is_terminal else 160)


def _engine() -> Any:
    return projections_engine(Settings().read_models_url())


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def stats_command(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
    month: Annotated[str | None, typer.Option(help="one Gregorian month, YYYY-MM")] = None,
) -> None:
    """Requests per service, accepted and refused, and the share done online (seed 002's
    table, seed 000's shares)."""
    totals = queries.service_totals(_engine(), month)
    if as_json:
        body = {code: {**t, "total": t["accepted"] + t["refused"],
                       "ar": CATALOGUE[code].ar, "en": CATALOGUE[code].en}
                for code, t in sorted(totals.items())}
        typer.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"E-service requests{' in ' + month if month else ''}, per service")
    for name in ("service", "الخدمة", "service (English)", "accepted", "refused",
                 "online share"):
        table.add_column(name, justify="right" if name in ("accepted", "refused",
                                                            "online share") else "left")
    ordered = sorted(totals.items(), key=lambda kv: -(kv[1]["accepted"] + kv[1]["refused"]))
    for code, t in ordered:
        s = CATALOGUE[code]
        table.add_row(code, s.ar, s.en, f"{t['accepted']:,}", f"{t['refused']:,}",
                      _share(t["online"], t["online"] + t["office"]))
    online = sum(t["online"] for t in totals.values())
    office = sum(t["office"] for t in totals.values())
    table.add_row("all", "", "", f"{sum(t['accepted'] for t in totals.values()):,}",
                  f"{sum(t['refused'] for t in totals.values()):,}",
                  _share(online, online + office), style="bold")
    console.print(table)


def establishment_command(
    establishment_id: Annotated[str, typer.Argument()],
    on: Annotated[str | None, typer.Option(help="for expiring permits, YYYY-MM-DD "
                                                "(default: its last activity)")] = None,
) -> None:
    """An establishment now: profile, band and its history, workforce, open absence
    reports, permits expiring within 30 days."""
    engine = _engine()
    est = queries.establishment(engine, establishment_id)
    if est is None:
        console.print(f"[red]error[/red] establishment_id: no establishment "
                      f"{establishment_id} in the read models")
        raise typer.Exit(code=2)
    console.print(_profile(est))
    console.print(_band_history(queries.band_history(engine, establishment_id)))
    console.print(_pairs("Workforce", queries.workforce(engine, establishment_id)))
    day = date.fromisoformat(on) if on else date.fromisoformat(est["last_occurred_at"][:10])
    console.print(_rows(f"Open absence reports filed by {establishment_id}",
                        queries.open_absence_reports(engine, establishment_id)))
    console.print(_rows(f"Permits expiring from {day} within 30 days",
                        queries.permits_expiring(engine, establishment_id, day),
                        ("worker_id", "permit_type", "valid_from", "valid_until",
                         "renewals")))


def worker_command(worker_id: Annotated[str, typer.Argument()]) -> None:
    """A worker now: employer, status, permit, and every request that touched them."""
    found = queries.worker(_engine(), worker_id)
    if found is None:
        console.print(f"[red]error[/red] worker_id: no worker {worker_id} in the read models")
        raise typer.Exit(code=2)
    console.print(_pairs(f"Worker {worker_id}", {k: v for k, v in found["worker"].items()
                                                 if k != "stream"}))
    console.print(_rows("Permit history", found["permit_events"],
                        ("kind", "permit_type", "months", "valid_from", "valid_until",
                         "fee_sar", "establishment_id", "occurred_at")))
    console.print(_rows("Requests that touched the worker", found["requests"],
                        ("occurred_at", "service", "establishment_id", "outcome", "rule",
                         "actor_account_id", "role", "channel", "device_id", "ip")))


def _profile(est: dict[str, Any]) -> Table:
    band = est["band"]
    ar, en = BAND_LABELS[band] if band else ("", "not assessed")
    return _pairs(f"Establishment {est['establishment_id']}", {
        "name": est["name"], "activity": est["activity"], "city": est["city"],
        "owner": est["owner_account_id"], "opened on": est["opened_on"],
        "branches": ", ".join(orjson.loads(est["branches"])) or "-",
        "headcount": f"{est['headcount']:,} ({est['size']})",
        "Saudis / weighted": f"{est['saudis']:,} / {est['weighted_saudis_milli'] / 1000:,.1f}",
        "expatriates": f"{est['expatriates']:,}",
        "Saudization now": f"{est['percentage_bp'] / 100:.2f}%",
        "band": f"{en} — {ar} (since {est['band_since']})",
        "last wage file": f"{est['last_wage_month']} "
                          f"({(est['wage_compliance_bp'] or 0) / 100:.0f}% paid as recorded)",
        "refused requests": f"{est['refusals']:,}"})


def _band_history(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Band history (each change with the event that caused it)")
    for name in ("occurred_at (UTC)", "from", "to", "Saudization", "26-week average",
                 "headcount", "cause event"):
        table.add_column(name)
    for r in rows:
        table.add_row(r["occurred_at"], r["from_band"] or "-", r["to_band"],
                      f"{r['percentage_bp'] / 100:.2f}%", f"{r['average_bp'] / 100:.2f}%",
                      str(r["headcount"]), r["cause_event_id"] or "-")
    return table


def _pairs(title: str, values: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for k, v in values.items():
        table.add_row(k, "-" if v is None else str(v))
    return table


def _rows(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...] | None = None
          ) -> Table:
    table = Table(title=f"{title}: {len(rows):,}")
    names = columns or (tuple(rows[0]) if rows else ())
    for name in names:
        table.add_column(name)
    for r in rows:
        table.add_row(*("-" if r.get(n) is None else str(r.get(n)) for n in names))
    return table
