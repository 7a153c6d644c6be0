"""The credential audit's two sources of requests, on one kept `bench.scale` work folder.

`bench.scale --keep` leaves the store and the read models of its run. This times the
same audits (the campaigns' victims since their leaks, then accounts drawn by their
events since mid-history, as the scale run's queries stage draws them) twice each, in
alternating order: with the requests from the account's rows in the read models
(projections/account_requests.py), and from the store's events (the baseline: the same
verdicts, the same index, only the requests read from the store). Each pass can start
from a dropped page cache (`--drop-caches`, root only), the case of a store larger than
memory.

    .venv/bin/python -m bench.audit_sources --work /tmp/scale-0.2 --drop-caches
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from bench.audit import _quantile
from bench.common import RESULTS, drop_caches, print_table, write_results
from bench.scale import SEED, audit_accounts, time_audits
from domain.ledger import Ledger
from projections.fraud_verdicts import LiveVerdicts
from replay.credential_audit import READ_MODELS, STORE

app = typer.Typer(add_completion=False)
EXPECTED = {"rows": READ_MODELS, "store": STORE}  # where each way's requests come from


class StoreRequests(LiveVerdicts):
    """The read models' verdicts, with the requests read from the store: the baseline."""

    def requests(self, account_id: str, credentials: Sequence[str], start: str,
                 end: str | None) -> None:
        return None


def timed(ledger: Ledger, verdicts: dict[str, LiveVerdicts], jobs: list[tuple[str, str]],
          drop: bool, label: str) -> dict[str, list[float]]:
    if drop:
        drop_caches()
    times = time_audits(ledger, jobs, verdicts, f"audits, {label}")
    for way, expected in EXPECTED.items():
        if dict(times[way].requests_from) != {expected: len(jobs)}:
            raise SystemExit(f"{way}: requests from {dict(times[way].requests_from)}, "
                             f"expected {expected} for all {len(jobs)}")
    return {way: t.times for way, t in times.items()}


def figures(times: list[float]) -> dict[str, float]:
    return {"p50_s": statistics.median(times), "p99_s": _quantile(times, 0.99),
            "max_s": max(times)}


@app.command()
def main(
    work: Annotated[Path, typer.Option(help="a work folder kept by bench.scale --keep")],
    accounts: Annotated[int, typer.Option(min=1, help="audits to time")] = 200,
    seed: Annotated[int, typer.Option(help="the draw's seed (the scale run's)")] = SEED,
    drop: Annotated[bool, typer.Option("--drop-caches", help="drop the page cache before "
                                       "each pass (root)")] = False,
    out: Annotated[Path | None, typer.Option(help="results file")] = None,
) -> None:
    """Time the same audits with their requests from the read models and from the store."""
    url = f"sqlite:///{work / 'events.sqlite'}"
    models = f"sqlite:///{work / 'projections.sqlite'}"
    rows, store = LiveVerdicts.open(models), StoreRequests.open(models)
    if rows is None or store is None:
        raise typer.BadParameter(f"--work: {work} holds no read models")
    ledger = Ledger(url)
    jobs = audit_accounts(url, str(work), accounts, seed)
    passes = {label: timed(ledger, {"rows": rows, "store": store}, jobs, drop, label)
              for label in ("first pass", "second pass")}
    rows.close()
    store.close()
    summary = {label: {way: figures(t) for way, t in times.items()}
               for label, times in passes.items()}
    result = {"work": str(work), "audits": len(jobs), "dropped_caches": drop,
              "passes": summary}
    path = write_results(f"audit-sources-{work.name}", result,
                         out or RESULTS / "side-runs" / f"audit-sources-{work.name}.json")
    print_table(f"credential audit, {len(jobs)} audits: requests from the read models' rows "
                "and from the store", ("pass, source", "p50 s", "p99 s", "max s"),
                [(f"{label}, {way}", *f.values()) for label, ways in summary.items()
                 for way, f in ways.items()])
    print(f"figures written to {path}")


if __name__ == "__main__":
    app()
