"""The whole history: day after day planned, stamped, sorted and streamed out.

Only one day's requests (and the few sessions that run past midnight) are held at a
time: a day is planned, its sessions stamped, and every request stamped before the
next day begins is sorted and written. Request ids are given in written order, so they
rise with `occurred_at`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import pathlib
import random
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import IO, Any

import orjson

from simulator import bootstrap, leaks
from simulator.activity import Activity
from simulator.clock import Clock
from simulator.sessions import Context, Pending, Stamper, Step
from simulator.world import BOOTSTRAP_DAYS, World

WRITE_SLICE = 20_000


@dataclass(frozen=True)
class SimulationSummary:
    """What was written: the counts the plan file holds, and the history's span."""

    requests: int
    services: dict[str, int]  # lines written per service code
    setup: dict[str, int]  # of which the bootstrap's set-up requests
    activity: dict[str, int]  # of which the history proper
    establishments: int
    accounts: int
    workers: int
    campaigns: int
    first_occurred_at: str | None
    last_occurred_at: str | None

    def plan(self, arguments: dict[str, Any]) -> dict[str, Any]:
        body = asdict(self)
        return {"arguments": arguments,
                "totals": {"requests": self.requests, "setup": sum(self.setup.values()),
                           "activity": sum(self.activity.values()),
                           "establishments": self.establishments, "accounts": self.accounts,
                           "workers": self.workers, "campaigns": self.campaigns,
                           "first_occurred_at": self.first_occurred_at,
                           "last_occurred_at": self.last_occurred_at},
                "services": body["services"], "setup": body["setup"],
                "activity": body["activity"]}


class Writer:
    """Turns stamped requests into JSON lines, numbering them as they go out."""

    def __init__(self, out: IO[bytes], clock: Clock, seed: int) -> None:
        self.out = out
        self.clock = clock
        self.seed = seed
        self.written = 0
        self.services: Counter[str] = Counter()
        self.labels: list[dict[str, Any]] = []
        self.first: str | None = None
        self.last: str | None = None

    def write(self, batch: list[Pending]) -> None:
        """In slices: the bootstrap's days are hundreds of thousands of lines."""
        for first in range(0, len(batch), WRITE_SLICE):
            self._write(batch[first:first + WRITE_SLICE])

    def _write(self, batch: list[Pending]) -> None:
        if not batch:
            return
        dumps, iso, seed = orjson.dumps, self.clock.iso, self.seed
        lines: list[bytes] = []
        n = self.written
        for ts, _, step, ctx in batch:
            n += 1
            request_id = f"r{seed}-{n:09d}"
            occurred = iso(ts)
            lines.append(dumps({
                "request_id": request_id, "service": step.service, "occurred_at": occurred,
                "channel": ctx.channel, "actor": step.acting.actor,
                "session_id": ctx.session_id, "auth": ctx.auth, "client": ctx.client,
                "establishment_id": step.establishment_id, "payload": step.payload}))
            self.services[step.service] += 1
            if step.mark is not None:
                self.labels.append(_label(step, ctx, request_id, occurred))
        self.first = self.first or iso(batch[0][0])
        self.last = iso(batch[-1][0])
        self.written = n
        lines.append(b"")
        self.out.write(b"\n".join(lines))


def _label(step: Step, ctx: Context, request_id: str, occurred: str) -> dict[str, Any]:
    """A campaign request's ground truth: known only once the line has its id."""
    assert step.mark is not None
    return {"type": "request", "request_id": request_id, "campaign": step.mark.campaign,
            "account_id": step.mark.account_id, "credential_id": ctx.auth["credential_id"],
            "actor_account_id": step.acting.account.account_id, "kind": step.mark.kind,
            "occurred_at": occurred}


def simulate(*, establishments: int, months: int, seed: int,
             out: pathlib.Path | IO[bytes], leaks: int = 0,
             labels: pathlib.Path | None = None, plan: pathlib.Path | None = None,
             start: dt.date = dt.date(2025, 1, 1),
             progress: Callable[[int], None] | None = None) -> SimulationSummary:
    """Write a deterministic history of e-service requests; see the package docstring."""
    if establishments < 1 or months < 1 or leaks < 0:
        raise ValueError("establishments and months must be at least 1, leaks at least 0")
    # The world's objects live for the whole run and the garbage is acyclic: the cyclic
    # collector would only re-scan the live ones, a third of the run time at scale.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _simulate(establishments, months, seed, out, leaks, labels, plan, start,
                         progress)
    finally:
        if collecting:
            gc.enable()


def _simulate(establishments: int, months: int, seed: int, out: pathlib.Path | IO[bytes],
              leaks: int, labels: pathlib.Path | None, plan: pathlib.Path | None,
              start: dt.date, progress: Callable[[int], None] | None) -> SimulationSummary:
    with ExitStack() as stack:
        stream = (stack.enter_context(out.open("wb")) if isinstance(out, pathlib.Path)
                  else out)
        clock = Clock(start, months)
        writer = Writer(stream, clock, seed)
        world, activity = _run(clock, seed, establishments, leaks, writer, progress)
    summary = _summary(world, activity, writer)
    if labels is not None:
        _write_labels(labels, clock, activity.struck, writer.labels)
    if plan is not None:
        arguments = {"establishments": establishments, "months": months, "seed": seed,
                     "leaks": leaks, "start": start.isoformat()}
        plan.write_bytes(orjson.dumps(summary.plan(arguments), option=orjson.OPT_INDENT_2))
    return summary


def _run(clock: Clock, seed: int, establishments: int, leak_count: int, writer: Writer,
         progress: Callable[[int], None] | None) -> tuple[World, Activity]:
    world = World(seed, clock)
    founders = bootstrap.plan(world, establishments, leak_count)
    activity = Activity(world, founders, {})
    stamper = Stamper(clock, random.Random(f"{seed}-stamps"), seed)
    for day in range(clock.days):
        if day == bootstrap.FOUNDING_DAYS:
            accomplices = [e for e in world.establishments if e.accomplice]
            activity.campaigns = leaks.schedule(world, accomplices)
        activity.run(day)
        book = world.books.pop(day, None)
        if book is not None:
            stamper.stamp(day, book, _phase(activity, day))
        _flush(stamper, writer, clock.moment(day + 1, 0))
        if progress is not None:
            progress(writer.written)
    _flush(stamper, writer, None)
    if progress is not None:
        progress(writer.written)
    return world, activity


def _phase(activity: Activity, day: int) -> Counter[str]:
    return activity.setup_counts if day < BOOTSTRAP_DAYS else activity.activity_counts


def _flush(stamper: Stamper, writer: Writer, before: int | None) -> None:
    pending = stamper.pending
    pending.sort(key=_order)
    cut = len(pending) if before is None else bisect.bisect_left(
        pending, before, key=lambda p: p[0])
    writer.write(pending[:cut])
    stamper.pending = pending[cut:]


def _order(item: Pending) -> tuple[int, int]:
    return item[0], item[1]


def _summary(world: World, activity: Activity, writer: Writer) -> SimulationSummary:
    return SimulationSummary(
        requests=writer.written, services=dict(sorted(writer.services.items())),
        setup=dict(sorted(activity.setup_counts.items())),
        activity=dict(sorted(activity.activity_counts.items())),
        establishments=len(world.establishments), accounts=len(world.accounts),
        workers=world.workers, campaigns=len(activity.struck),
        first_occurred_at=writer.first, last_occurred_at=writer.last)


def _write_labels(path: pathlib.Path, clock: Clock, campaigns: list[leaks.Campaign],
                  requests: list[dict[str, Any]]) -> None:
    """Per campaign, its header line, then its requests in written order."""
    lines: list[bytes] = []
    for campaign in sorted(campaigns, key=lambda c: c.name):
        own = [r for r in requests if r["campaign"] == campaign.name]
        header = {**campaign.header(), "leaked_at": clock.iso(campaign.leaked_at),
                  "requests": len(own)}
        lines.append(orjson.dumps(header))
        lines.extend(orjson.dumps(r) for r in own)
    path.write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
