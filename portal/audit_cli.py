"""`sijil audit`: the fraud analyst's commands (seed 001: transactions made with a
disclosed password).

    sijil audit credential ACCOUNT --since T [--until T] [--suspicious] [--replay] [--json]
    sijil audit alerts [--limit N] [--account A] [--json]

`credential` asks the event store (replay/credential_audit.py), with the live
detector's verdicts from the read models when they have scored the window (`--replay`:
the detector replayed over the account's history instead); `alerts` reads the fraud
detector's alerts from the read models (projections/fraud_alerts.py). Other commands
(`counterfactual`, `remediate`) are added to `audit_app` by the modules that own them:
`audit_app.command("counterfactual")(counterfactual_command)`.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import inspect, select

from domain.ledger import Ledger
from domain.settings import Settings
from projections.database import projections_engine
from projections.fraud_alerts import ALERTS
from projections.fraud_verdicts import LiveVerdicts
from replay.credential_audit import HARMFUL, LIVE, REPLAYED, STORE, Audit, audit_credential

audit_app = typer.Typer(help="The fraud analyst: what a leaked credential did, and the "
                             "detector's alerts.", no_args_is_help=True)
console = Console(width=None if Console().is_terminal else 180)


@audit_app.command("credential")
def credential_command(
    account_id: Annotated[str, typer.Argument(help="the account whose credential leaked")],
    since: Annotated[str, typer.Option("--since", help="UTC, ISO 8601: when it leaked")],
    until: Annotated[str | None, typer.Option("--until", help="UTC, ISO 8601")] = None,
    suspicious: Annotated[bool, typer.Option("--suspicious",
                                             help="only the requests the rules flag")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
    replay: Annotated[bool, typer.Option(
        "--replay", help="replay the detector over the account's history instead of "
                         "reading the live detector's verdicts from the read models")] = False,
) -> None:
    """Every request made with the account's credentials since T: establishment,
    service, outcome, what it changed, the risk signals, device and ip."""
    settings = Settings()
    ledger = Ledger(settings.store_url())
    verdicts = None if replay else LiveVerdicts.open(settings.read_models_url())
    try:
        audit = audit_credential(ledger, account_id, since, until=until, verdicts=verdicts)
    except ValueError as error:
        raise typer.BadParameter(f"--since/--until: {error}") from None
    finally:
        if verdicts is not None:
            verdicts.close()
    if as_json:
        body = audit.to_json()
        if suspicious:
            body["requests"] = [r for r in body["requests"] if r["suspicious"]]
        typer.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    console.print(credential_table(audit, suspicious))
    totals = audit.effect_totals(audit.suspicious)
    harm = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in sorted(totals.items())
                     if k in HARMFUL) or "none"
    console.print(f"{len(audit.requests):,} requests with credentials "
                  f"{', '.join(audit.credentials) or '-'} since {audit.since}; "
                  f"{len(audit.suspicious):,} suspicious (score ≥ {audit.threshold}); "
                  f"their effects: {harm}")
    read = (f"{audit.history_events:,} events read from the store"
            if audit.requests_from == STORE else "the account's rows in the read models")
    console.print(f"signals: {SOURCES[audit.source]}; requests: {read}")


SOURCES = {LIVE: "the live detector's verdicts (read models)",
           REPLAYED: "the detector replayed over the account's history"}


def credential_table(audit: Audit, suspicious_only: bool = False) -> Table:
    shown = audit.suspicious if suspicious_only else audit.requests
    table = Table(title=f"Requests with {audit.account_id}'s credentials since {audit.since}, "
                        "by establishment and service")
    for name in ("establishment", "service", "occurred_at (UTC)", "outcome", "effects",
                 "signals (score)", "device", "ip", "request"):
        table.add_column(name)
    for (establishment, service), requests in audit.groups(shown).items():
        for r in requests:
            outcome = r.outcome if r.outcome == "accepted" else f"refused: {r.rule}"
            signals = f"{', '.join(r.signals)} ({r.score:.2f})" if r.signals else "-"
            style = "bold red" if r.suspicious else None
            table.add_row(establishment, service, r.occurred_at[:19] + "Z", outcome,
                          "; ".join(e.describe() for e in r.effects) or "-", signals,
                          r.device_id, r.ip, r.request_id, style=style)
    return table


@audit_app.command("alerts")
def alerts_command(
    limit: Annotated[int, typer.Option(help="the latest N alerts")] = 50,
    account: Annotated[str | None, typer.Option(help="one account's alerts")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """The fraud detector's alerts, latest first, from the read models."""
    rows = latest_alerts(Settings().read_models_url(), limit, account)
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"Fraud alerts: the latest {len(rows):,}")
    for name in ("occurred_at (UTC)", "score", "signals", "account", "establishment",
                 "service", "session", "device", "ip", "request"):
        table.add_column(name, justify="right" if name == "score" else "left")
    for a in rows:
        table.add_row(a["occurred_at"][:19] + "Z", f"{a['score']:.2f}", ", ".join(a["signals"]),
                      a["account_id"], a["establishment_id"] or "-", a["service"],
                      a["session_id"], a["device_id"], a["ip"], a["request_id"])
    console.print(table)


def latest_alerts(url: str, limit: int, account: str | None = None) -> list[dict[str, Any]]:
    """The latest alerts by store position; none when the detector has not run."""
    engine = projections_engine(url)
    try:
        if not inspect(engine).has_table(ALERTS.name):
            return []
        query = select(ALERTS).order_by(ALERTS.c.position.desc()).limit(limit)
        if account:
            query = query.where(ALERTS.c.account_id == account)
        with engine.connect() as conn:
            # Column names come back as str subclasses, which orjson refuses.
            rows = [{str(k): v for k, v in r.items()} for r in conn.execute(query).mappings()]
    finally:
        engine.dispose()
    for r in rows:
        r["signals"] = orjson.loads(r["signals"])
        r["published"] = bool(r["published"])
    return rows
