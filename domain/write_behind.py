"""Write-behind: one batch is written to the store while the next is decided.

At ingest about a third of the time goes to writing. Deciding is pure Python, so a
writer thread gains nothing (it measured slower: the two fight for the interpreter
lock); a writer process uses the machine's other core. The outcome is the same as
writing in line: batches are written one at a time in order, each in its own
transaction as before, and a stream still being written is never read back before its
write ends. If a write fails, nothing after it is written and the failure is raised on
the next commit, load or close: every batch decided after the failed one was decided on
state the store never held. A short ingest is not worth a process start: the first
batches are written in line, and the writer starts after `start_after` of them.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
from collections import Counter, deque
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Protocol
from uuid import UUID

from domain.ledger import Batch, Ledger
from domain.persistence import shared_by_processes
from domain.settings import Settings
from domain.streams import Stream


class BatchStore(Protocol):
    @property
    def env(self) -> Any: ...  # where the writer process finds the store: SQLALCHEMY_URL

    def load(self, stream_id: UUID) -> Stream | None: ...

    def prepare(self, events: list[Stream.Event], aggregates: list[Stream]) -> Batch: ...

    def write(self, batch: Batch) -> None: ...


class WriteFailed(RuntimeError):
    """An earlier batch did not reach the store; this one and those after were dropped."""


def _write_batches(url: str, conn: Connection) -> None:
    """The writer process: write each batch received, answer each with None or the
    failure, and after a failure write nothing more."""
    ledger = Ledger(url)
    ledger.keep_pages(Settings().store_writer_cache_mib)
    with contextlib.suppress(EOFError):  # the deciding process ended without a goodbye
        _serve(ledger, conn)


def _serve(ledger: Ledger, conn: Connection) -> None:
    failed = False
    while (batch := conn.recv()) is not None:
        if failed:
            conn.send("an earlier batch failed")
            continue
        try:
            ledger.write(batch)
            conn.send(None)
        except Exception as error:
            failed = True
            conn.send(f"{type(error).__name__}: {error}")


class WriteBehind:
    """The EventStore port of domain.unit_of_work over a BatchStore, writing in a child
    process. `depth` batches may be on their way at once: decisions run ahead of the
    store by at most that many, which bounds what is held in memory."""

    def __init__(self, store: BatchStore, *, depth: int = 2, start_after: int = 20) -> None:
        self.store = store
        self.depth = depth
        self.start_after = start_after
        self._commits = 0
        self._conn: Connection | None = None
        self._process: Any = None
        self._flight: deque[Counter[UUID]] = deque()  # streams of each batch sent
        self._writing: Counter[UUID] = Counter()
        self._error: str | None = None

    def load(self, stream_id: UUID) -> Stream | None:
        while self._writing[stream_id] > 0:
            self._acknowledge()
        self._raise_if_failed()
        return self.store.load(stream_id)

    def commit(self, events: list[Stream.Event], aggregates: list[Stream]) -> None:
        self._raise_if_failed()
        batch = self.store.prepare(events, aggregates)
        self._commits += 1
        if self._conn is None and (self._commits <= self.start_after or not self._startable):
            self.store.write(batch)
            return
        while len(self._flight) >= self.depth:
            self._acknowledge()
        self._send(batch, Counter({a.id: 1 for a in aggregates}))

    def flush(self) -> None:
        """Wait until every batch handed over is written (or one failed)."""
        while self._flight:
            self._acknowledge()
        self._raise_if_failed()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._stop()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is None:
            self.close()
            return
        try:  # what was handed over was decided whole: let it be written
            while self._flight and self._error is None:
                self._acknowledge()
        finally:
            self._stop()

    def _send(self, batch: Batch, streams: Counter[UUID]) -> None:
        if self._conn is None:
            self._start()
        assert self._conn is not None
        self._conn.send(batch)
        self._flight.append(streams)
        self._writing.update(streams)

    def _acknowledge(self) -> None:
        assert self._conn is not None
        try:
            answer = self._conn.recv()
        except EOFError:
            answer = f"the writer process ended (exit code {self._process.exitcode})"
            self._flight = deque([Counter()] * len(self._flight))
            self._writing.clear()
        streams = self._flight.popleft()
        for stream_id in streams:
            self._writing[stream_id] -= 1
            if not self._writing[stream_id]:
                del self._writing[stream_id]
        if answer is not None and self._error is None:
            self._error = answer

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise WriteFailed(f"a batch was not written: {self._error}")

    @functools.cached_property
    def _startable(self) -> bool:
        """Not from a daemonic process (it may have no children), nor for a store that
        another process would not see. Asked once: it does not change during an ingest."""
        return (not multiprocessing.current_process().daemon
                and shared_by_processes(self.store.env["SQLALCHEMY_URL"]))

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no forked database connection
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_write_batches, name="sijil-writer",
                                        args=(self.store.env["SQLALCHEMY_URL"], theirs),
                                        daemon=True)
        self._process.start()
        theirs.close()

    def _stop(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(OSError):  # it ended already; its failure is recorded
            self._conn.send(None)
        self._process.join()
        self._conn.close()
        self._conn = None
