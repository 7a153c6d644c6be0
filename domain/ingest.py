"""Ingest: JSON Lines of requests, decided in order, saved many to a transaction.

Batching changes the cost, not the outcome: a batch's requests are decided one after
another against the same in-memory aggregates (domain/unit_of_work.py), exactly as if
each had been saved before the next was read. A malformed line is reported with its
line number and fields and is never recorded; the lines after it go on unless strict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from domain.collector import BatchCollector, frozen_between_batches
from domain.decide import Outcome
from domain.ledger import Ledger
from domain.requests import MalformedRequest, parse_request
from domain.settings import Settings
from domain.unit_of_work import UnitOfWork
from domain.write_behind import WriteBehind


def cold_tier_bytes() -> int:
    """The cold tier's bound (SIJIL_INGEST_COLD_MIB): by default every worker of F = 1.0
    frozen, so that no worker the cache lets go is read back from the store (with 1 GiB,
    about 1.5 million of the 3.97 million, F = 1.0's deciding process waited on the disk
    from its 45th minute: bench/RESULTS.md)."""
    return Settings().ingest_cold_mib * 2**20


@dataclass
class Malformed:
    line: int
    problems: list[str]

    def __str__(self) -> str:
        return f"line {self.line}: " + "; ".join(self.problems)


@dataclass
class IngestReport:
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    rules: Counter[tuple[str, str]] = field(default_factory=Counter)
    malformed: list[Malformed] = field(default_factory=list)
    events: int = 0
    lines: int = 0
    stopped_early: bool = False

    def count(self, outcome: Outcome) -> None:
        self.events += len(outcome.events)
        if outcome.accepted:
            self.accepted[outcome.service] += 1
        else:
            self.refused[outcome.service] += 1
            self.rules[(outcome.service, outcome.rule or "")] += 1

    @property
    def decided(self) -> int:
        return sum(self.accepted.values()) + sum(self.refused.values())


def ingest(ledger: Ledger, lines: Iterable[bytes | str], *, batch_size: int = 500,
           strict: bool = False, progress: Callable[[int], None] | None = None,
           on_malformed: Callable[[Malformed], None] | None = None,
           cache_size: int = 100_000, cold_bytes: int | None = None,
           writer_after: int = 20) -> IngestReport:
    """`writer_after`: batches written in line before a writer process takes over
    (domain/write_behind.py); `cold_bytes`: what the aggregates let go by the cache may
    take frozen (domain/cold_tier.py; None: the setting). The cycle collector runs
    between batches only (domain/collector.py): the aggregates, caches and cold tier an
    ingest keeps are millions of objects at F = 1.0, and its own thresholds walked them
    all again and again."""
    cold = cold_tier_bytes() if cold_bytes is None else cold_bytes
    with WriteBehind(ledger, start_after=writer_after) as store, frozen_between_batches():
        uow = ledger.unit_of_work(cache_size, store, known=ledger.known_streams(),
                                  cold_bytes=cold)
        report = _ingest(ledger, uow, lines, batch_size, strict, progress, on_malformed)
    if progress:  # once all is written
        progress(report.lines)
    return report


def _ingest(ledger: Ledger, uow: UnitOfWork, lines: Iterable[bytes | str], batch_size: int,
            strict: bool, progress: Callable[[int], None] | None,
            on_malformed: Callable[[Malformed], None] | None) -> IngestReport:
    report, collector = IngestReport(), BatchCollector()
    pending = 0
    for number, line in enumerate(lines, start=1):
        report.lines = number
        if not line.strip():
            continue
        try:
            request = parse_request(line)
        except MalformedRequest as error:
            bad = Malformed(number, error.problems)
            report.malformed.append(bad)
            if on_malformed:
                on_malformed(bad)
            if strict:
                report.stopped_early = True
                break
            continue
        report.count(ledger.decide(uow, request))
        pending += 1
        if pending >= batch_size:
            uow.commit()
            collector.after_batch()
            pending = 0
            if progress:
                progress(number)
    uow.commit()
    return report
