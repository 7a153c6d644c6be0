"""The fraud analyst's figures on a simulated history with leaked-credential campaigns.

    python -m bench.audit [--events 1000000] [--leaks 60] [--seed 20250101]
                          [--tune-seed 11] [--tune-events 390000] [--tune-leaks 40]
                          [--accounts 200]
                          [--folder PATH] [--out PATH]

A history of about `--events` events (simulator.simulate with `--leaks` campaigns, 12
months) is ingested into a SQLite store; then:

- detector precision and recall: domain/fraud.py over every record of the store, in
  order, against the simulator's labels, request by request — an alert on a labelled
  thief request is a true positive, on any other request a false positive, a labelled
  request without an alert a false negative;
- the same on the tuning seed: the weights and the threshold were tuned on
  `--tune-seed` (11); the figures that count are the other seed's, reported beside them;
- audit-credential latency: replay.credential_audit.audit_credential for every
  campaign's victim (since the leak) and for accounts picked at random (since
  mid-history): p50, p99, max; and the audit's own precision and recall on the victims'
  thief requests;
- as-of replay: replay.history.from_store + replay.as_of.as_of for the establishment
  with the most events, at the end of the history, median of 3;
- verify: replay.verify.verify_store over the whole store, when that module exists.

Figures go to bench/results/audit.json with the date, machine and command.
"""

from __future__ import annotations

import importlib
import math
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from sqlalchemy import distinct, func, select

from bench.common import console, print_table, progress, sqlite_url, write_results
from domain.context import iso, parse_iso
from domain.fraud import Detector, FraudSettings
from domain.ingest import ingest
from domain.ledger import Ledger
from domain.persistence import EVENT_INDEX
from replay.as_of import as_of
from replay.credential_audit import audit_credential
from replay.history import Cutoff, from_store
from simulator import simulate

SEED = 20250101
TUNE_SEED = 11
MONTHS = 12
# Events a simulated establishment makes in 12 months, bootstrap included (measured:
# seed 11, 3,000 establishments -> 392,504 events).
EVENTS_PER_ESTABLISHMENT = 130
TARGET_RECALL, TARGET_PRECISION = 0.95, 0.90
Record = dict[str, Any]


@dataclass
class History:
    seed: int
    role: str  # reported, tuning
    ledger: Ledger
    establishments: int
    requests: int
    events: int = 0
    ingest_seconds: float = 0.0
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # request id -> label
    last_occurred_at: str | None = None
    first_occurred_at: str | None = None


def build(seed: int, role: str, events: int, leaks: int, folder: Path) -> History:
    establishments = max(20, math.ceil(events / EVENTS_PER_ESTABLISHMENT))
    requests_file, labels_file = folder / f"requests-{seed}.jsonl", folder / f"labels-{seed}"
    console.print(f"[bold]{role}[/bold] seed {seed}: simulating {establishments:,} "
                  f"establishments, 12 months, {leaks} leak campaigns")
    summary = simulate(establishments=establishments, months=MONTHS, seed=seed,
                       out=requests_file, leaks=leaks, labels=labels_file)
    ledger = Ledger(sqlite_url(folder, f"events-{seed}"))
    history = History(seed, role, ledger, establishments, summary.requests,
                      first_occurred_at=summary.first_occurred_at,
                      last_occurred_at=summary.last_occurred_at)
    for line in labels_file.read_bytes().splitlines():
        label = orjson.loads(line)
        if label["type"] == "campaign":
            history.campaigns.append(label)
        else:
            history.labels[label["request_id"]] = label
    started = time.perf_counter()
    with progress() as bar, requests_file.open("rb") as lines:
        task = bar.add_task(f"ingest seed {seed}", total=summary.requests)
        report = ingest(ledger, lines, progress=lambda n: bar.update(task, completed=n))
    history.ingest_seconds = time.perf_counter() - started
    history.events = report.events
    requests_file.unlink()
    return history


def records(ledger: Ledger, page: int = 5000) -> Iterator[Record]:
    start = 1
    while notes := ledger.recorder.select_notifications(start=start, limit=page):
        yield from (ledger.record_of(n) for n in notes)
        start = notes[-1].id + 1


def detection(history: History, settings: FraudSettings) -> dict[str, Any]:
    """The detector over the whole store, in order, against the labels."""
    detector = Detector(settings, keep_requests=False)
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(f"detect seed {history.seed}", total=history.events)
        for n, record in enumerate(records(history.ledger), start=1):
            detector.feed(record)
            if n % 20_000 == 0:
                bar.update(task, completed=n)
        bar.update(task, completed=history.events)
    seconds = time.perf_counter() - started
    alerted = detector.alerted_requests()
    thief = set(history.labels)
    tp, fp, fn = alerted & thief, alerted - thief, thief - alerted
    kinds = Counter(history.labels[r]["kind"] for r in thief)
    caught = Counter(history.labels[r]["kind"] for r in tp)
    signals = Counter(s for a in detector.alerts for s in orjson.loads(a["signals"]))
    return {
        "labelled_requests": len(thief), "alerts": len(alerted),
        "true_positives": len(tp), "false_positives": len(fp), "false_negatives": len(fn),
        "precision": len(tp) / len(alerted) if alerted else 1.0,
        "recall": len(tp) / len(thief) if thief else 1.0,
        "recall_by_kind": {k: round(caught[k] / n, 4) for k, n in sorted(kinds.items())},
        "signals_in_alerts": dict(signals.most_common()),
        "false_positive_services": dict(Counter(
            a["service"] for a in detector.alerts if a["request_id"] in fp).most_common()),
        "accounts_scored": len(detector.accounts),
        "seconds": seconds, "events_per_s": history.events / seconds if seconds else 0.0,
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def audits(history: History, accounts: int, seed: int) -> dict[str, Any]:
    """audit_credential for each victim (since the leak) and random accounts."""
    engine = history.ledger.recorder.datastore.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        everyone = sorted(r[0] for r in conn.execute(select(distinct(EVENT_INDEX.c.account_id)))
                          if not r[0].startswith(("sys:", "staff:")))
    victims = [(c["account_id"], c["leaked_at"]) for c in history.campaigns]
    middle = _middle(history)
    rng = random.Random(seed)
    others = rng.sample(everyone, min(len(everyone), max(0, accounts - len(victims))))
    jobs = victims + [(a, middle) for a in others]
    times: list[float] = []
    found = expected = flagged = 0
    by_account: dict[str, set[str]] = {}
    for c in history.campaigns:
        by_account.setdefault(c["account_id"], set()).update(
            r for r, label in history.labels.items()
            if label["campaign"] == c["campaign"] and label["actor_account_id"] == c["account_id"])
    requests_listed = []
    with progress() as bar:
        task = bar.add_task("audit credentials", total=len(jobs))
        for n, (account, since) in enumerate(jobs):
            started = time.perf_counter()
            audit = audit_credential(history.ledger, account, since)
            times.append(time.perf_counter() - started)
            requests_listed.append(len(audit.requests))
            if n < len(victims):
                thief = by_account.get(account, set())
                suspicious = {r.request_id for r in audit.suspicious}
                expected += len(thief)
                found += len(thief & suspicious)
                flagged += len(suspicious)
            bar.update(task, advance=1)
    return {
        "audits": len(jobs), "victims": len(victims), "others_since": middle,
        "p50_s": statistics.median(times), "p99_s": _quantile(times, 0.99),
        "max_s": max(times), "mean_requests_listed": statistics.mean(requests_listed),
        "max_requests_listed": max(requests_listed),
        "victims_thief_requests": expected, "victims_thief_requests_flagged": found,
        "victims_suspicious_listed": flagged,
        "audit_recall": found / expected if expected else 1.0,
        "audit_precision": found / flagged if flagged else 1.0,
    }


def _middle(history: History) -> str:
    first, last = history.first_occurred_at, history.last_occurred_at
    if not first or not last:
        return first or ""
    a, b = parse_iso(first), parse_iso(last)
    return iso(a + (b - a) / 2)


def as_of_figures(history: History, repeats: int = 3) -> dict[str, Any]:
    engine = history.ledger.recorder.datastore.engine  # type: ignore[attr-defined]
    idx = EVENT_INDEX.c
    with engine.connect() as conn:
        number, own = conn.execute(
            select(idx.establishment_id, func.count()).where(idx.establishment_id.is_not(None))
            .group_by(idx.establishment_id).order_by(func.count().desc()).limit(1)).one()
    times, loads, folds = [], [], []
    state = None
    for _ in range(repeats):
        started = time.perf_counter()
        history_records = from_store(history.ledger, number, Cutoff())
        loaded = time.perf_counter()
        state = as_of(number, history_records)
        done = time.perf_counter()
        loads.append(loaded - started)
        folds.append(done - loaded)
        times.append(done - started)
    assert state is not None
    return {"establishment_id": number, "own_events": own, "events_replayed": state.events,
            "workers": len(state.workers), "timeline_requests": len(state.timeline),
            "median_s": statistics.median(times), "median_load_s": statistics.median(loads),
            "median_fold_s": statistics.median(folds), "repeats": repeats}


def verify_figures(history: History) -> dict[str, Any]:
    try:
        verify = importlib.import_module("replay.verify")
    except ImportError as error:
        return {"skipped": f"replay.verify is absent ({error})"}
    started = time.perf_counter()
    report = verify.verify_store(history.ledger)
    seconds = time.perf_counter() - started
    return {"events": report.events, "streams": report.streams, "ok": report.ok,
            "problems": len(report.problems), "seconds": seconds,
            "events_per_s": report.events / seconds if seconds else 0.0}


def run(events: int, leaks: int, seed: int, tune_seed: int, tune_events: int,
        tune_leaks: int, accounts: int, folder: Path | None, out: Path | None
        ) -> dict[str, Any]:
    settings = FraudSettings()
    with tempfile.TemporaryDirectory(prefix="sijil-audit-") as scratch:
        where = folder or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        histories = []
        if tune_events > 0:
            tuning = build(tune_seed, "tuning", tune_events, tune_leaks, where)
            histories.append((tuning, detection(tuning, settings)))
        reported = build(seed, "reported", events, leaks, where)
        histories.append((reported, detection(reported, settings)))
        audit = audits(reported, accounts, seed)
        replay = as_of_figures(reported)
        verified = verify_figures(reported)
    det = histories[-1][1]
    figures = {
        "arguments": {"events": events, "leaks": leaks, "seed": seed, "tune_seed": tune_seed,
                      "tune_events": tune_events, "tune_leaks": tune_leaks,
                      "accounts": accounts, "months": MONTHS},
        "settings": {"threshold": settings.threshold, "weights": settings.weights},
        "histories": [{"role": h.role, "seed": h.seed, "establishments": h.establishments,
                       "requests": h.requests, "events": h.events,
                       "campaigns": len(h.campaigns), "ingest_seconds": h.ingest_seconds,
                       "ingest_events_per_s": h.events / h.ingest_seconds
                       if h.ingest_seconds else 0.0, "detection": d}
                      for h, d in histories],
        "audit_credential": audit, "as_of": replay, "verify": verified,
        "targets": {"recall": TARGET_RECALL, "precision": TARGET_PRECISION,
                    "met": det["recall"] >= TARGET_RECALL
                    and det["precision"] >= TARGET_PRECISION},
    }
    path = write_results("audit", figures, out)
    _report(figures)
    console.print(f"figures written to {path}")
    return figures


def _report(figures: dict[str, Any]) -> None:
    rows = []
    for h in figures["histories"]:
        d = h["detection"]
        rows.append((f"{h['role']} (seed {h['seed']})", h["events"], h["campaigns"],
                     d["labelled_requests"], d["alerts"], d["true_positives"],
                     d["false_positives"], d["false_negatives"], round(d["precision"], 4),
                     round(d["recall"], 4), d["events_per_s"]))
    print_table("Fraud detector against the simulator's labels (request level)",
                ["history", "events", "campaigns", "thief requests", "alerts", "TP", "FP",
                 "FN", "precision", "recall", "detect events/s"], rows)
    a, r, v = figures["audit_credential"], figures["as_of"], figures["verify"]
    rows2: list[tuple[Any, ...]] = [
        ("audit-credential p50 (s)", a["p50_s"]), ("audit-credential p99 (s)", a["p99_s"]),
        ("audit-credential max (s)", a["max_s"]), ("audits timed", a["audits"]),
        ("audit recall on victims", round(a["audit_recall"], 4)),
        ("audit precision on victims", round(a["audit_precision"], 4)),
        (f"as-of replay {r['establishment_id']} ({r['events_replayed']:,} events), "
         "median (s)", r["median_s"]),
    ]
    if "skipped" in v:
        rows2.append(("verify", v["skipped"]))
    else:
        rows2.append((f"verify store ({v['events']:,} events, ok={v['ok']}) events/s",
                      v["events_per_s"]))
    print_table("Audit, replay and verify", ["figure", "value"], rows2)


app = typer.Typer(add_completion=False)


@app.command()
def main(
    events: Annotated[int, typer.Option(help="events in the reported history, about")]
        = 1_000_000,
    leaks: Annotated[int, typer.Option(help="leak campaigns in the reported history")] = 60,
    seed: Annotated[int, typer.Option(help="the reported history's seed")] = SEED,
    tune_seed: Annotated[int, typer.Option(help="the seed the weights were tuned on")]
        = TUNE_SEED,
    tune_events: Annotated[int, typer.Option(help="events in the tuning history (0: skip)")]
        = 390_000,
    tune_leaks: Annotated[int, typer.Option(help="leak campaigns in the tuning history")]
        = 40,
    accounts: Annotated[int, typer.Option(help="audits timed (victims first)")] = 200,
    folder: Annotated[Path | None, typer.Option(help="keep the stores here")] = None,
    out: Annotated[Path | None, typer.Option(
        help="results file (default bench/results/audit.json)")] = None,
) -> None:
    """Detector precision and recall, audit and replay latency, verify throughput."""
    run(events, leaks, seed, tune_seed, tune_events, tune_leaks, accounts, folder, out)


if __name__ == "__main__":
    app()
