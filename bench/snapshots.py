"""How long a very large establishment takes to load, with snapshots and without.

The largest establishments have tens of thousands of workers and, over years, about a
million events in their stream; every request that touches one loads it. Snapshots
(Ledger.SNAPSHOT_EVERY) exist so that a load reads one snapshot and a few hundred
events instead of the whole history. This benchmark builds such a stream through the
domain's own aggregate and the Ledger's commit (so snapshots are taken as in
production), then times a load through a fresh Ledger against the baseline measured in
the same run: replaying every event from version 1 with no snapshot store.

    python -m bench.snapshots [--events 1000000] [--workers 50000] [--postgres]
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from eventsourcing.application import Repository

from bench.common import (
    console,
    median_seconds,
    postgres,
    print_table,
    progress,
    sqlite_url,
    timed,
    write_results,
)
from domain.context import iso
from domain.establishment import Establishment
from domain.identifiers import establishment_stream, event_id
from domain.ledger import Ledger
from domain.nitaqat import Workforce, contribution, size_category
from domain.requests import PAYLOADS, WITHOUT_ESTABLISHMENT
from domain.rules import Rules
from domain.streams import SCHEMA_VERSION, Stream

FILE_NUMBER = "1-900001"
OWNER = "owner-900001"
BUILD_BATCH = 5_000  # events a commit while building: a snapshot at most every commit
TARGET_SECONDS = 1.0
RULES = Rules()

# What fills the stream besides hires, leaves and visas: refusals dominate, as they do
# for a large establishment whose staff file many requests a day.
FILLERS: tuple[tuple[str, int], ...] = (
    ("request.rejected", 70),
    ("establishment.recruitment_balance_requested", 10),
    ("establishment.recruitment_disbursement_requested", 8),
    ("establishment.compensatory_visa_requested", 6),
    ("establishment.saudization_certificate_issued", 6),
)
REFUSALS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("permit.renew", "PERMIT_RENEWAL_NOT_OPEN", {"months": 12}),
    ("permit.issue", "PERMIT_ISSUE_WINDOW", {"months": 12}),
    ("worker.profession_change", "WORKER_IQAMA_EXPIRED", {"profession": "foreman"}),
    ("absence.report", "ABSENCE_DOCUMENTS", {}),
    ("worker.branch_transfer", "BRANCH_UNKNOWN", {"branch_id": "b99"}),
)
SERVICE = {
    "establishment.file_opened": "establishment.open_file",
    "establishment.branch_added": "establishment.branch_add",
    "establishment.worker_joined": "worker.join",
    "establishment.worker_left": "integration.passports_sync",
    "establishment.visa_issued": "visa.issue",
    "establishment.visa_cancelled": "visa.cancel",
    "establishment.wage_file_uploaded": "payroll.wage_protection_upload",
    "establishment.recruitment_balance_requested": "recruitment.balance_request",
    "establishment.recruitment_disbursement_requested": "recruitment.disbursement_request",
    "establishment.compensatory_visa_requested": "visa.compensatory_request",
    "establishment.saudization_certificate_issued": "certificate.saudization",
}
BAND_FLOORS_BP: tuple[tuple[int, str], ...] = (
    (3500, "platinum"), (2600, "high_green"), (1800, "medium_green"), (1000, "low_green"),
    (0, "red"),
)


def band_of(percentage_bp: int) -> str:
    """A fixed stand-in for the Nitaqat table: enough to emit band changes that look
    like the domain's, without assessing a million times."""
    return next(band for floor, band in BAND_FLOORS_BP if percentage_bp >= floor)


@dataclass
class Quotas:
    """Events of each kind still to emit; hires and leaves are exact so the final
    headcount is exactly the requested number of workers."""

    joined: int
    left: int
    visas: int
    cancels: int
    branches: int

    @classmethod
    def plan(cls, workers: int) -> Quotas:
        churn = workers // 10
        joined = workers + churn
        visas = joined * 3 // 4
        return cls(joined=joined, left=churn, visas=visas, cancels=visas // 50,
                   branches=min(10, max(1, workers // 100)))

    def total(self) -> int:
        return self.joined + self.left + self.visas + self.cancels + self.branches


@dataclass
class Fact:
    """One event's own payload and the request that asked for it (service and payload
    as the requester sent them); `asked=None` reuses the previous request, as a band
    change does: the domain records it inside the decision that caused it."""

    event_type: str
    payload: dict[str, Any]
    service: str = ""
    asked: dict[str, Any] | None = None


@dataclass
class History:
    """The envelopes of one large establishment's stream, in order, deterministic for a
    seed: the same shapes the handlers of domain/ record (Decision.envelope)."""

    events: int
    workers: int
    seed: int = 7
    start: date = date(2020, 1, 5)
    days: int = 5 * 365
    rng: random.Random = field(init=False)
    quotas: Quotas = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.quotas = Quotas.plan(self.workers)
        months = self.days // 28 + 2  # wage files and band changes take slots too
        if self.events < self.quotas.total() + months + 50:
            raise ValueError(f"{self.events} events cannot hold {self.workers} workers: "
                             f"need at least {self.quotas.total() + months + 50}")
        self.stream = establishment_stream(FILE_NUMBER)
        self.active: list[tuple[str, dict[str, Any]]] = []
        self.unused_visas: list[str] = []
        self.counts = Workforce(0, 0, 0, 0)
        self.band = "red"
        self.month = ""
        self.serial = 0
        self.request: dict[str, Any] = {}
        self.now = self.moment(1)

    def moment(self, version: int) -> datetime:
        seconds = (version - 1) * self.days * 86_400 / self.events
        return datetime(self.start.year, self.start.month, self.start.day, 6,
                        tzinfo=UTC) + timedelta(seconds=seconds)

    def envelopes(self) -> Iterator[tuple[dict[str, Any], datetime]]:
        """(envelope, recorded_at) for versions 1..events."""
        for version in range(1, self.events + 1):
            at = self.moment(version)
            fact = self.next_fact(version, at)
            yield self.envelope(version, at, fact), at + timedelta(milliseconds=3)

    def envelope(self, version: int, at: datetime, fact: Fact) -> dict[str, Any]:
        if fact.asked is not None:
            self.request = self.context(version, fact.service or SERVICE[fact.event_type],
                                        fact.asked)
        return {"event_id": event_id(self.stream, version), "event_type": fact.event_type,
                "schema_version": SCHEMA_VERSION, "establishment_id": FILE_NUMBER,
                "occurred_at": iso(at), "request": self.request, "payload": fact.payload}

    def context(self, version: int, service: str, asked: dict[str, Any]) -> dict[str, Any]:
        """The request record (RequestBase.as_record): who, how, and what was asked, the
        payload validated by the service's own request model."""
        staff = f"delegate-{version % 7}" if version % 3 else OWNER
        system = service.startswith("integration.")
        actor = "sys:passports" if system else staff
        role = "system" if system else ("owner" if actor == OWNER else "delegate")
        return {"request_id": f"bench-{version}", "service": service,
                "channel": "integration" if system else "portal",
                "actor": {"account_id": actor, "role": role, "on_behalf_of": None},
                "session_id": f"s-{actor}-{version // 40}",
                "auth": {"method": "certificate" if system else "password_otp",
                         "credential_id": f"c-{actor}"},
                "client": {"ip": "10.20.30.40", "device_id": f"d-{actor}",
                           "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Sijil-bench"},
                "establishment_id": None if service in WITHOUT_ESTABLISHMENT else FILE_NUMBER,
                "payload": PAYLOADS[service].model_validate(asked).model_dump(mode="json")}

    # -- what happens next ---------------------------------------------------------
    def next_fact(self, version: int, at: datetime) -> Fact:
        self.now = at
        if version == 1:
            return self.opened()
        slots = self.events - version + 1
        required = self.quotas.total()
        if required < slots:
            scheduled = self.scheduled(version, at)
            if scheduled is not None:
                return scheduled
        if self.rng.random() * slots < required:
            return self.required_fact()
        return self.filler(version, at)

    def scheduled(self, version: int, at: datetime) -> Fact | None:
        """A band change right after the move that caused it; a wage file each month."""
        percentage = self.counts.percentage_bp(RULES)
        if band_of(percentage) != self.band:
            return self.band_changed(version, percentage)
        month = at.strftime("%Y-%m")
        if month != self.month:
            first = self.month == ""
            self.month = month
            if not first:
                return self.wage_file(at)
        return None

    def required_fact(self) -> Fact:
        q = self.quotas
        pick = self.rng.randrange(q.total())
        for name in ("joined", "left", "visas", "cancels", "branches"):
            if pick < getattr(q, name):
                return getattr(self, name)()  # type: ignore[no-any-return]
            pick -= getattr(q, name)
        raise AssertionError("quotas exhausted")

    # -- the facts -------------------------------------------------------------------
    def opened(self) -> Fact:
        asked = {"name": "Al Bench Contracting Company", "commercial_registration":
                 "1010900001", "activity": "construction", "city": "Riyadh",
                 "owner_counts_as_saudi": False}
        return Fact("establishment.file_opened", {**asked, "owner_account_id": OWNER},
                    asked=asked)

    def joined(self) -> Fact:
        self.quotas.joined -= 1
        self.serial += 1
        saudi = self.rng.random() < 0.3
        worker_id = f"{1 if saudi else 2}{self.serial:09d}"
        wage = self.rng.choice((3000, 3500, 4000, 5500, 9000)) if saudi else 1500
        part_time = saudi and self.rng.random() < 0.05
        disabled = saudi and self.rng.random() < 0.02
        c = asdict(contribution(saudi=saudi, wage_sar=wage, part_time=part_time,
                                disabled=disabled, rules=RULES))
        visa = self.unused_visas.pop() if not saudi and self.unused_visas else None
        self.active.append((worker_id, c))
        self.move(c, +1)
        asked: dict[str, Any] = {"worker_id": worker_id, "wage_sar": wage,
                                 "part_time": part_time, "disabled": disabled,
                                 "visa_id": visa}
        if saudi:
            asked |= {"nationality": "SAU", "saudi_category": "saudi",
                      "profession": "accountant"}
        else:
            arrived = self.now.date() - timedelta(days=self.rng.randrange(30))
            asked |= {"nationality": "IND", "profession": "mason",
                      "arrival_date": arrived.isoformat(),
                      "iqama_expiry": (arrived + timedelta(days=730)).isoformat()}
        return Fact("establishment.worker_joined", {
            "worker_id": worker_id, "via": "hire", "contribution": c,
            "percentage_bp": self.counts.percentage_bp(RULES), "visa_id": visa},
            asked=asked)

    def left(self) -> Fact:
        if not self.active:
            return self.joined()
        self.quotas.left -= 1
        i = self.rng.randrange(len(self.active))
        self.active[i], self.active[-1] = self.active[-1], self.active[i]
        worker_id, c = self.active.pop()
        self.move(c, -1)
        kind = self.rng.choice(("final_exit_confirmed", "exit_without_return"))
        return Fact("establishment.worker_left", {
            "worker_id": worker_id, "reason": kind, "contribution": c, "counted": True,
            "percentage_bp": self.counts.percentage_bp(RULES)},
            asked={"worker_id": worker_id, "kind": kind})

    def visas(self) -> Fact:
        self.quotas.visas -= 1
        visa_id = f"V{self.quotas.visas:07d}"
        self.unused_visas.append(visa_id)
        asked = {"visa_id": visa_id, "nationality": self.rng.choice(("IND", "PAK", "BGD")),
                 "profession": self.rng.choice(("mason", "carpenter", "laborer"))}
        return Fact("establishment.visa_issued", dict(asked), asked=asked)

    def cancels(self) -> Fact:
        self.quotas.cancels -= 1
        if not self.unused_visas:
            self.quotas.visas += 1  # keep the total: this slot issues a visa instead
            return self.visas()
        asked = {"visa_id": self.unused_visas.pop(0)}
        return Fact("establishment.visa_cancelled", dict(asked), asked=asked)

    def branches(self) -> Fact:
        self.quotas.branches -= 1
        asked = {"branch_id": f"b{self.quotas.branches + 1}",
                 "city": self.rng.choice(("Jeddah", "Dammam", "Jubail", "Makkah"))}
        return Fact("establishment.branch_added", dict(asked), asked=asked)

    def band_changed(self, version: int, percentage: int) -> Fact:
        to_band = band_of(percentage)
        payload = {"from_band": self.band, "to_band": to_band, "percentage_bp": percentage,
                   "average_bp": percentage, "headcount": self.counts.headcount,
                   "size": size_category(self.counts.headcount),
                   "cause_event_id": event_id(self.stream, version - 1)}
        self.band = to_band
        return Fact("establishment.band_changed", payload)

    def wage_file(self, at: datetime) -> Fact:
        previous = (at.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        total = self.counts.headcount
        paid = total - self.rng.randrange(0, max(1, total // 50))
        asked = {"month": previous, "workers_total": total, "workers_paid_as_recorded": paid}
        return Fact("establishment.wage_file_uploaded", {
            **asked, "compliance_bp": 10_000 if total == 0 else paid * 10_000 // total},
            asked=asked)

    def filler(self, version: int, at: datetime) -> Fact:
        kinds, weights = zip(*FILLERS, strict=True)
        kind = self.rng.choices(kinds, weights)[0]
        worker = self.active[self.rng.randrange(len(self.active))][0] if self.active \
            else "2000000001"
        if kind == "request.rejected":
            return self.refused(version, worker)
        if kind == "establishment.compensatory_visa_requested":
            return Fact(kind, {"for_worker_id": worker}, asked={"for_worker_id": worker})
        if kind == "establishment.saudization_certificate_issued":
            pct = self.counts.percentage_bp(RULES)
            return Fact(kind, {"band": self.band, "percentage_bp": pct, "average_bp": pct,
                               "valid_until": (at.date() + timedelta(days=90)).isoformat()},
                        asked={})
        count = {"count": self.rng.randint(1, 50)}
        return Fact(kind, dict(count), asked=count)

    def refused(self, version: int, worker: str) -> Fact:
        service, rule, extra = REFUSALS[version % len(REFUSALS)]
        asked = {"worker_id": worker, **extra}
        valid = PAYLOADS[service].model_validate(asked).model_dump(mode="json")
        return Fact("request.rejected", {"rule": rule, "message": f"refused by {rule}",
                                         "service": service, "request_payload": valid},
                    service=service, asked=asked)

    def move(self, c: dict[str, Any], sign: int) -> None:
        w = self.counts
        if not c["saudi"]:
            self.counts = Workforce(w.saudis, w.saudi_weight_milli, w.disabled_saudis,
                                    w.expatriates + sign)
            return
        weight = 0 if c["disabled"] else sign * c["weight_milli"]
        self.counts = Workforce(w.saudis + sign, w.saudi_weight_milli + weight,
                                w.disabled_saudis + (sign if c["disabled"] else 0),
                                w.expatriates)


# -- building --------------------------------------------------------------------------
def build(ledger: Ledger, events: int, workers: int, *, show: bool = True) -> UUID:
    """Write the stream through Ledger.commit: bulk commits of BUILD_BATCH events, then
    the last SNAPSHOT_EVERY events one request at a time, as production commits them, so
    the snapshots sit where production would put them."""
    history = History(events, workers)
    every = Ledger.SNAPSHOT_EVERY[Establishment]
    tail_from = max(2, events - every + 1)
    est: Establishment | None = None
    with progress() as bar:
        task = bar.add_task("building the stream", total=events, visible=show)
        for version, (envelope, recorded_at) in enumerate(history.envelopes(), start=1):
            if est is None:
                est = Establishment.open(history.stream, envelope, recorded_at)
            else:
                est.append(envelope, recorded_at)
            if version >= tail_from or version % BUILD_BATCH == 0 or version == events:
                ledger.commit(est.collect_events(), [est])  # type: ignore[arg-type]
                bar.update(task, completed=version)
    return history.stream


# -- measuring -------------------------------------------------------------------------
class Counted:
    """Counts the rows a recorder's select_events returns for one stream: the number of
    events a load actually read from the store."""

    def __init__(self, ledger: Ledger, stream: UUID) -> None:
        self.rows = 0
        inner = ledger.recorder.select_events

        def counting(originator_id: Any, *args: Any, **kwargs: Any) -> Any:
            found = inner(originator_id, *args, **kwargs)
            if str(originator_id) == str(stream):
                self.rows += len(found)
            return found

        ledger.recorder.select_events = counting  # type: ignore[method-assign]


def load_with_snapshots(url: str, stream: UUID, version: int | None = None) -> Stream:
    """A fresh Ledger each time: nothing cached from the build or an earlier load."""
    ledger = Ledger(url)
    found: Stream = ledger.repository.get(stream, version=version)
    return found


def replay_everything(url: str, stream: UUID) -> Stream:
    """The baseline: the same event store, no snapshot store, every event from 1."""
    ledger = Ledger(url)
    found: Stream = Repository(ledger.events).get(stream)
    return found


def events_read(url: str, stream: UUID, version: int | None = None) -> int:
    ledger = Ledger(url)
    counter = Counted(ledger, stream)
    ledger.repository.get(stream, version=version)
    return counter.rows


def latest_snapshot(url: str, stream: UUID, lte: int | None = None) -> tuple[int, int]:
    """(version, size in bytes) of the snapshot a load at `lte` would start from."""
    ledger = Ledger(url)
    assert ledger.snapshots is not None
    rows = ledger.snapshots.recorder.select_events(stream, lte=lte, desc=True, limit=1)
    return (rows[0].originator_version, len(rows[0].state)) if rows else (0, 0)


def measure(url: str, stream: UUID, events: int, repeats: int) -> dict[str, Any]:
    """Head load (what every request does), the worst case (the version before the
    head's snapshot, SNAPSHOT_EVERY - 1 events after its own), and the full replay."""
    head = load_with_snapshots(url, stream)
    assert head.version == events, (head.version, events)
    worst = events - 1
    with_s, with_all = median_seconds(lambda: load_with_snapshots(url, stream), repeats)
    worst_s, _ = median_seconds(lambda: load_with_snapshots(url, stream, worst), repeats)
    console.print(f"  replaying all {events:,} events {repeats} times (the baseline)…")
    replay_s, replay_all = median_seconds(lambda: replay_everything(url, stream), repeats)
    snap_version, snap_bytes = latest_snapshot(url, stream)
    worst_snap, _ = latest_snapshot(url, stream, worst)
    replayed = replay_everything(url, stream)
    assert state(replayed) == state(head), "snapshot load differs from full replay"
    return {
        "stream_version": head.version,
        "load_with_snapshots_s": with_s, "load_with_snapshots_runs_s": with_all,
        "snapshot_version": snap_version, "snapshot_bytes": snap_bytes,
        "events_read_after_snapshot": events_read(url, stream),
        "worst_case_version": worst, "worst_case_snapshot_version": worst_snap,
        "worst_case_events_read_after_snapshot": events_read(url, stream, worst),
        "worst_case_load_s": worst_s,
        "full_replay_s": replay_s, "full_replay_runs_s": replay_all,
        "speedup": replay_s / with_s if with_s else None,
        "meets_target": worst_s < TARGET_SECONDS and with_s < TARGET_SECONDS,
        "headcount": getattr(head, "saudis", 0) + getattr(head, "expatriates", 0),
    }


def state(aggregate: Stream) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def run_backend(label: str, url: str, events: int, workers: int, repeats: int,
                show: bool) -> dict[str, Any]:
    console.print(f"[bold]{label}[/]: building {events:,} events, {workers:,} workers")
    build_s, stream = timed(lambda: build(Ledger(url), events, workers, show=show))
    figures = measure(url, stream, events, repeats)
    return {"backend": label, "build_s": build_s,
            "build_events_per_s": events / build_s if build_s else 0.0, **figures}


def report(results: list[dict[str, Any]]) -> None:
    rows = []
    for r in results:
        rows += [
            (f"{r['backend']}: load with snapshots (head)", r["load_with_snapshots_s"],
             r["events_read_after_snapshot"], r["snapshot_version"]),
            (f"{r['backend']}: load with snapshots (worst case)", r["worst_case_load_s"],
             r["worst_case_events_read_after_snapshot"], r["worst_case_snapshot_version"]),
            (f"{r['backend']}: full replay, no snapshots (baseline)", r["full_replay_s"],
             r["stream_version"], None),
            (f"{r['backend']}: speed-up (baseline / head load)", r["speedup"], None, None),
        ]
    print_table("Loading one establishment (median seconds)",
                ("measure", "seconds / ratio", "events read", "from snapshot at"), rows)
    for r in results:
        verdict = "met" if r["meets_target"] else "NOT met"
        console.print(f"{r['backend']}: target < {TARGET_SECONDS:.0f} s with snapshots: "
                      f"[bold]{verdict}[/] (stream of {r['stream_version']:,} events, "
                      f"{r['headcount']:,} workers, snapshot {r['snapshot_bytes']:,} bytes)")


def run(events: int = 1_000_000, workers: int = 50_000, *, use_postgres: bool = False,
        repeats: int = 5, out: Path | None = None, show: bool = True) -> dict[str, Any]:
    """Build and measure on SQLite (and PostgreSQL if asked); write and print figures."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sijil-bench-") as folder:
        url = sqlite_url(Path(folder), "snapshots")
        results.append(run_backend("sqlite", url, events, workers, repeats, show))
    with postgres(use_postgres) as (server, missing):
        if server is not None:
            url = server.create_database("bench_snapshots")
            results.append(run_backend("postgresql", url, events, workers, repeats, show))
        elif use_postgres:
            console.print(f"[yellow]PostgreSQL skipped[/]: {missing}")
    figures = {"events": events, "workers": workers, "repeats": repeats,
               "snapshot_every": Ledger.SNAPSHOT_EVERY[Establishment],
               "target_seconds": TARGET_SECONDS, "postgres_note": missing,
               "results": results}
    path = write_results("snapshots", figures, out)
    report(results)
    console.print(f"figures written to {path}")
    return figures


app = typer.Typer(add_completion=False)


@app.command()
def main(
    events: Annotated[int, typer.Option(help="events in the establishment's stream")]
        = 1_000_000,
    workers: Annotated[int, typer.Option(help="workers on its books at the end")] = 50_000,
    use_postgres: Annotated[bool, typer.Option(
        "--postgres/--no-postgres", help="also on a throwaway PostgreSQL server")] = False,
    repeats: Annotated[int, typer.Option(help="loads timed for each median")] = 5,
    out: Annotated[Path | None, typer.Option(
        help="results file (default bench/results/snapshots.json)")] = None,
) -> None:
    """Time loading a huge establishment with snapshots against replaying it all."""
    run(events, workers, use_postgres=use_postgres, repeats=repeats, out=out)


if __name__ == "__main__":
    app()
