"""`sijil audit counterfactual` and `sijil audit remediate`: what a leaked credential
changed, and the recorded compensating requests that undo it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from domain.context import parse_iso
from domain.ledger import Ledger
from domain.settings import Settings
from replay import remediation
from replay.counterfactual import Counterfactual, Exclusion, build, differences

console = Console(width=None if Console().is_terminal else 160)

Account = Annotated[str, typer.Option("--exclude-credential", help="the account whose "
                                      "credential leaked")]
Since = Annotated[str, typer.Option(help="from when (UTC, ISO 8601)")]
Devices = Annotated[list[str] | None, typer.Option("--device", help="only requests from "
                                                   "this device (repeatable)")]
Sessions = Annotated[list[str] | None, typer.Option("--session", help="only requests in "
                                                    "this session (repeatable)")]


def _exclusion(account: str, since: str, devices: list[str] | None,
               sessions: list[str] | None) -> Exclusion:
    try:
        moment = parse_iso(since).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise typer.BadParameter("--since: an ISO 8601 time, e.g. 2025-03-01T00:00:00Z"
                                 ) from None
    return Exclusion(account, moment, frozenset(devices or ()), frozenset(sessions or ()))


def _build(exclusion: Exclusion, establishment: str | None, workdir: Path
           ) -> tuple[Ledger, Counterfactual]:
    actual = Ledger(Settings().store_url())
    with console.status("deciding the history again without those requests ..."):
        cf = build(actual, exclusion, workdir)
    if establishment:
        cf.establishments = [establishment]
    cf.differences = differences(actual, cf.ledger, cf.establishments)
    return actual, cf


def counterfactual_command(account: Account, since: Since, devices: Devices = None,
                           sessions: Sessions = None,
                           establishment: Annotated[str | None, typer.Option()] = None,
                           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The state as if the credential's requests since T had never been made, decided
    again by the same rules, beside the actual state."""
    with tempfile.TemporaryDirectory() as folder:
        _, cf = _build(_exclusion(account, since, devices, sessions), establishment,
                       Path(folder))
        if as_json:
            typer.echo(orjson.dumps({"excluded_requests": cf.excluded,
                                     "establishments": cf.establishments,
                                     "differences": cf.differences},
                                    option=orjson.OPT_INDENT_2).decode())
            return
        replayed = cf.replayed.decided if cf.replayed else 0
        console.print(f"{len(cf.excluded)} requests excluded; {replayed:,} later requests "
                      "decided again by the same rules")
        console.print(_differences(cf.differences))


def remediate_command(account: Account, since: Since,
                      by: Annotated[str, typer.Option("--by", help="the ordering auditor, "
                                                      "e.g. staff:aud-7")],
                      devices: Devices = None, sessions: Sessions = None,
                      apply: Annotated[bool, typer.Option(help="record the reversals "
                                                          "(default: a dry run)")] = False,
                      reason: Annotated[str, typer.Option()] = "leaked credential") -> None:
    """The compensating requests that bring the actual state to the counterfactual where
    the rules allow; a dry run unless --apply, and applied ones are recorded like any
    request, each naming the event it undoes and the auditor who ordered it."""
    actual = Ledger(Settings().store_url())
    exclusion = _exclusion(account, since, devices, sessions)
    from replay.counterfactual import excluded_requests

    _, positions = excluded_requests(actual, exclusion)
    steps = remediation.plan(actual, positions, by, reason)
    outcomes = {s.event_id: o for s, o in remediation.apply(actual, steps)} if apply else {}
    console.print(_steps(steps, outcomes, apply))


def _differences(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"What the excluded requests changed: {len(rows)} differences")
    for name in ("establishment", "subject", "actual", "without those requests"):
        table.add_column(name)
    for d in rows:
        table.add_row(d["establishment_id"], d["subject"], str(d["actual"]),
                      str(d["counterfactual"]))
    return table


def _steps(steps: list[remediation.Step], outcomes: dict[str, Any], applied: bool) -> Table:
    title = "Remediation, applied" if applied else "Remediation plan (dry run: --apply records it)"
    table = Table(title=f"{title}: {sum(1 for s in steps if s.request)} reversals")
    for name in ("undoes event", "event type", "establishment", "subject", "action",
                 "outcome"):
        table.add_column(name)
    for s in steps:
        o = outcomes.get(s.event_id)
        outcome = "-" if o is None else ("recorded" if o.accepted else f"refused: {o.rule}")
        table.add_row(s.event_id, s.event_type, s.establishment_id or "-", s.subject,
                      s.action, outcome)
    return table
