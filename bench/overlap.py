"""Ingest, publish and project at once, as the ministry runs them (`bench.scale --overlap`).

bench.scale runs its stages one after another, each alone, so that each can be set
beside its baseline. The ministry runs them together: the publisher follows the store
and the projections follow the topic (`sijil publish --follow`, `sijil project
--follow`), and issue 6's pipeline target is of the three together. Alone, no stage
keeps both cores busy (ingest's decider is one process and its writer idles most of the
time; the publisher waits on the broker), so together they finish sooner than one after
another: this is what a ten-month run takes on this machine.

Each part is timed from the common start to the moment it has done all it will: the
ingest when every request is recorded, the publisher when every recorded event is on the
topic, the projections when every record is folded and the rebuilt tables swapped in.
The publisher is told that the ingest is over, and the rebuild that the topic is
complete (`Rebuild.build(complete=...)`), only after the part before has reported, so
neither stops at an end that is not the last. The rates are each part's count over its
own time: bounded by the part before, not comparable with a baseline measured alone.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.common import console, progress, rate
from bench.scale import _child, fresh_rebuild, ingest_requests, project_figures, publish_figures

POLL_S = 0.5


class PartFailed(RuntimeError):
    pass


def pipeline_stage(work: str, url: str, bootstrap: str, topic: str, requests: int,
                   processes: int, batch: int) -> dict[str, Any]:
    """The three parts at once; their figures, and the pipeline's wall time."""
    context = multiprocessing.get_context("spawn")
    ingested, complete = context.Event(), context.Event()
    counters = context.Array("q", 2)  # requests recorded, events published
    results = context.Queue()
    started = time.perf_counter()
    children = {"ingest": context.Process(target=_part, args=(
                    "ingest", results, _ingest, work, url, counters)),
                "publish": context.Process(target=_part, args=(
                    "publish", results, _publish, url, bootstrap, topic, ingested,
                    counters))}
    for child in children.values():
        child.start()
    figures: dict[str, Any] = {}
    try:
        building = _Building(work, bootstrap, topic, processes, batch, complete)
        try:
            _watch(children, results, figures, building, ingested, complete, counters,
                   requests, started)
        finally:
            complete.set()  # on a failure too: the rebuild stops at the topic's end
            building.thread.join()
        figures["project"] = building.finish(started)
    finally:
        ingested.set()
        complete.set()
        for child in children.values():
            child.join(timeout=5)
            if child.is_alive():
                child.terminate()
    figures["seconds"] = time.perf_counter() - started
    return figures


def _watch(children: dict[str, Any], results: Any, figures: dict[str, Any],
           building: _Building, ingested: Any, complete: Any, counters: Any,
           requests: int, started: float) -> None:
    """Until the rebuild has read the complete topic: each part's report taken as it
    comes (the ingest's tells the publisher, the publisher's tells the rebuild), the
    bars drawn from the parts' counters."""
    with progress() as bar:
        tasks = {"ingest": bar.add_task("overlapped: ingest (requests)", total=requests),
                 "publish": bar.add_task("overlapped: publish (events)", total=None),
                 "project": bar.add_task("overlapped: project (records, both readers)",
                                         total=None)}
        while building.thread.is_alive() and building.error is None:
            _take_reports(results, figures, started)
            if "ingest" in figures:
                ingested.set()
                bar.update(tasks["publish"], total=figures["ingest"]["events"])
            if "publish" in figures:
                complete.set()
            for name, child in children.items():
                if name not in figures and not child.is_alive() and results.empty():
                    raise PartFailed(f"{name}: the process died (exit {child.exitcode})")
            bar.update(tasks["ingest"], completed=counters[0])
            bar.update(tasks["publish"], completed=counters[1])
            bar.update(tasks["project"], completed=building.read[0], total=building.read[1])
            building.thread.join(POLL_S)


def _take_reports(results: Any, figures: dict[str, Any], started: float) -> None:
    """Each part's figures as it reports, its time counted from the common start (to
    within a poll) and its rate over that time; its own clock's as `own_seconds`."""
    while True:
        try:
            name, outcome = results.get_nowait()
        except queue.Empty:
            return
        if "error" in outcome:
            raise PartFailed(f"{name}: {outcome['error']}")
        seconds = time.perf_counter() - started
        outcome["own_seconds"], outcome["seconds"] = outcome["seconds"], seconds
        for count, key in (("requests", "requests_per_s"), ("events", "events_per_s")):
            if key in outcome:
                outcome[key] = rate(outcome[count], seconds)
        figures[name] = outcome


class _Building:
    """The rebuild, in a thread of this process (its readers are its own children)."""

    def __init__(self, work: str, bootstrap: str, topic: str, processes: int, batch: int,
                 complete: Any) -> None:
        self.work = work
        self.rebuild = fresh_rebuild(work, bootstrap, topic, processes, batch)
        self.rebuild.prepare()
        self.read = [0, 0]
        self.error: BaseException | None = None
        self.built = 0.0
        self.thread = threading.Thread(target=self._run, args=(complete,), daemon=True)
        self.thread.start()

    def _run(self, complete: Any) -> None:
        def seen(done: int, total: int) -> None:
            self.read[:] = [done, total]

        try:
            self.rebuild.build(seen, complete=complete)
            self.built = time.perf_counter()
        except BaseException as error:  # raised by the watcher
            self.error = error

    def finish(self, started: float) -> dict[str, Any]:
        if self.error is not None:
            self.rebuild.close()
            raise self.error
        try:
            with console.status("overlapped: project: indexes and swap …"):
                report = self.rebuild.swap()
        finally:
            self.rebuild.close()
        return project_figures(self.work, self.rebuild.processes, report, started,
                               self.built)


def _part(name: str, results: Any, function: Any, *args: Any) -> None:
    """A part in its process, measured as bench.scale measures a stage; its figures
    (or its error) back on `results`."""
    try:
        results.put((name, _child(function, False, *args)))
    except BaseException as error:  # reported by the watcher
        results.put((name, {"error": f"{type(error).__name__}: {error}"}))


def _ingest(work: str, url: str, counters: Any) -> dict[str, Any]:
    return ingest_requests(work, url, lambda n: counters.__setitem__(0, n))


def _publish(url: str, bootstrap: str, topic: str, ingested: Any, counters: Any
             ) -> dict[str, Any]:
    """Everything the store holds, page after page, until the ingest is over and all
    it recorded is on the topic."""
    from consumers.publisher import Publisher
    from domain.ledger import Ledger

    publisher = Publisher(Ledger(url), bootstrap, topic)
    started, published = time.perf_counter(), 0
    try:
        while True:
            over = ingested.is_set()  # before reading: then every event is in the store
            published += publisher.publish_pending(_counting(counters, published)).published
            if over:
                break
            time.sleep(POLL_S)
        seconds = time.perf_counter() - started
    finally:
        publisher.close()
    return publish_figures(publisher, bootstrap, topic, published, seconds)


def _counting(counters: Any, before: int) -> Callable[[int], None]:
    def done(n: int) -> None:
        counters[1] = before + n
    return done
