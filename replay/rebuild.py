"""Rebuilding projections from Kafka offset 0 into shadow tables, then swapping them in.

    rebuild = Rebuild(url=..., bootstrap=..., topic=..., names=["establishments"])
    rebuild.prepare()   # empty shadow tables: <table>__shadow, indexes <index>__shadow
    rebuild.build()     # the topic from offset 0 to its end, folded into the shadows
    rebuild.swap()      # one transaction: old tables out, shadows in, offsets set
    rebuild.close()     # (or `rebuild_projections(...)`, all four)

Until the swap, readers and the live runner see the old tables; the swap is one
transaction (PostgreSQL and SQLite both have transactional DDL), after which they see
the new ones.

What gets rebuilt. A projection is rebuilt with those it reads (its `requires`: it folds
over their rows as of each record) and with those that read it: the runner folds a
reader over the rows of what it reads as they are *at that record*, so a reader and what
it reads must always stand at the same offsets. Rebuilding one alone would put them at
different offsets, and the runner would then fold the reader over rows from its future.
In the catalogue the sets are {workers, trail, statistics}, {establishments,
nitaqat_alerts} and {permits}.

Offsets, and correctness beside the live runner. The runner's group keeps offsets per
projection (consumers/offsets.py `MemberOffsets`: rows of `<group>/<projection>`), saved
in the transaction of its writes; it resumes from the least of them and folds a record
into a projection only at or after that projection's own offset. The swap:
1. takes the group's lock (`lock_group`: the one each runner batch takes first), so no
   runner batch is in flight and none starts until the swap commits;
2. reads the rebuilt projections' stored offsets, and if the runner got further than
   the rebuild meanwhile, folds on into the shadows until the rebuild is at least as
   far (a prefix in position order either way, as both read in position order);
3. carries the alerts relay's `published` marks over (by alert id), drops the old
   tables, renames the shadows and their indexes to the real names;
4. sets each rebuilt projection's offsets to where the rebuild stopped — ahead of the
   runner or equal, never behind, so no event is applied twice or missed — and bumps its
   epoch, so a running runner drops the rows it cached from the old tables.

In parallel (`processes` > 1): the rebuilt set splits into parts that read nothing of
each other (`independent_parts`), each built from offset 0 by a child process with its
own reader, to its own cut; the swap, in the parent, catches each part up from its cut
and sets each part's offsets to its own cut — still one transaction.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import (
    Connection,
    MetaData,
    Table,
    inspect,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.elements import quoted_name

from consumers.codec import Undecodable, decode
from consumers.inspection import settled_end_offsets
from consumers.offsets import (
    SQLITE_LOCK_WAIT_MS,
    MemberOffsets,
    bump_epoch,
    lock_group,
    member_offsets,
    set_member_offsets,
)
from consumers.projection_runner import GROUP, ProjectionHandler
from consumers.runtime import MERGE_CONSUMER_OPTIONS, Delivery, PositionMerge
from domain.collector import BatchCollector, frozen_between_batches
from projections.catalog import ALL, BY_NAME
from projections.database import projections_engine
from projections.rows import Projection

SHADOW = "__shadow"
# Columns written by a relay after the fold, not by the fold: kept across a rebuild, by
# primary key, so that a rebuild does not send every alert again.
RELAY_MARKS: dict[str, str] = {"nitaqat_alerts": "published", "fraud_alerts": "published"}
Progress = Callable[[int, int], None]  # (records read, records to read)


class Complete(Protocol):
    """Whether the topic being built from will get no more records."""

    def is_set(self) -> bool: ...


class RebuildError(RuntimeError):
    pass


def rebuild_set(names: Iterable[str]) -> tuple[Projection, ...]:
    """The named projections, those they read and those that read them (transitively),
    in fold order."""
    wanted = set(names)
    unknown = wanted - set(BY_NAME)
    if unknown:
        raise KeyError(f"projection: unknown {sorted(unknown)}; known: {sorted(BY_NAME)}")
    while True:
        grown = set(wanted)
        for p in ALL:
            if p.name in wanted:
                grown.update(p.requires)
            if wanted & set(p.requires):
                grown.add(p.name)
        if grown == wanted:
            return tuple(p for p in ALL if p.name in wanted)
        wanted = grown


def shadow_name(name: str) -> str:
    return f"{name}{SHADOW}"


def shadow_table(table: Table, metadata: MetaData) -> Table:
    """The same columns and keys under `<name>__shadow`, indexes `<index>__shadow`."""
    shadow = table.to_metadata(metadata, name=shadow_name(table.name))
    for index in shadow.indexes:
        index.name = quoted_name(shadow_name(str(index.name)), None)
    return shadow


@dataclass
class RebuildReport:
    projections: tuple[str, ...]
    records: int = 0  # records read from the topic
    folded: int = 0
    undecodable: int = 0
    failed: int = 0  # records a fold refused (the runner dead-letters them)
    caught_up: int = 0  # records folded during the swap, to reach the runner
    offsets: dict[int, int] = field(default_factory=dict)  # where the rebuild stopped
    rows: dict[str, int] = field(default_factory=dict)
    build_seconds: float = 0.0
    swap_seconds: float = 0.0


class TopicReader:
    """The topic from offset 0 (or from a cut), every partition assigned, released in
    position order (PositionMerge, as the runner reads it). No group: nothing is
    committed to Kafka."""

    def __init__(self, bootstrap: str, topic: str, batch: int,
                 consumer_options: dict[str, Any] | None = None,
                 start: dict[int, int] | None = None) -> None:
        self.topic, self.bootstrap = topic, bootstrap
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=batch,
            **{**MERGE_CONSUMER_OPTIONS, **(consumer_options or {})})
        partitions = self.consumer.partitions_for_topic(topic)
        if not partitions:
            self.consumer.close()
            raise RebuildError(f"topic {topic}: not found (or no partitions)")
        self.partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        for tp in self.partitions:  # on from a cut (a prefix in position order)
            if start and tp.partition in start:
                self.consumer.seek(tp, start[tp.partition])
        self.merge = PositionMerge(self.consumer, topic)
        self.read = 0
        self.undecodable = 0

    def size(self) -> int:
        """Records from the beginning to the current end (transaction markers included)."""
        begins = self.consumer.beginning_offsets(self.partitions)
        ends = self.consumer.end_offsets(self.partitions)
        return sum(ends[tp] - begins[tp] for tp in self.partitions)

    def next_batch(self, timeout_ms: int = 200) -> list[Delivery]:
        polled = self.merge.admit(self.consumer.poll(timeout_ms=timeout_ms))
        good: list[Delivery] = []
        for tp, messages in polled.items():
            self.read += len(messages)
            for m in messages:
                try:
                    good.append(Delivery(tp.topic, tp.partition, m.offset, m.key,
                                         decode(m.value, m.headers)))
                except Undecodable:
                    self.undecodable += 1  # the runner dead-letters it; no fold sees it
        released, _ = self.merge.release(good)
        return released

    def at_end(self) -> bool:
        if self.merge.pending():
            return False
        ends = self.consumer.end_offsets(self.partitions)
        if not all(self.consumer.position(tp) >= ends[tp] for tp in self.partitions):
            return False
        # at the last stable offset: the end only once no commit marker is on its way
        ends = settled_end_offsets(self.consumer, self.bootstrap, self.partitions)
        return all(self.consumer.position(tp) >= ends[tp] for tp in self.partitions)

    def cut(self) -> dict[int, int]:
        """Per partition, the first offset not yet released: a prefix in position order."""
        out = {}
        for tp in self.partitions:
            buffer = self.merge.buffers.get(tp.partition)
            out[tp.partition] = (buffer[0].offset if buffer
                                 else int(self.consumer.position(tp)))
        return out

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Part:
    """Projections that read nothing of the rest of the rebuild: built by one reader and
    one handler (in this process, or in a child), stopped at one cut of the topic."""

    projections: tuple[Projection, ...]
    handler: ProjectionHandler | None = None
    reader: TopicReader | None = None
    cut: dict[int, int] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.projections)


def independent_parts(projections: Sequence[Projection]) -> list[tuple[Projection, ...]]:
    """The projections split where none reads another's rows: each part can be folded
    by its own reader, to its own offsets."""
    names = {p.name for p in projections}
    part_of = {name: {name} for name in names}
    for p in projections:
        for required in p.requires:
            if required in names:
                merged = part_of[p.name] | part_of[required]
                for name in merged:
                    part_of[name] = merged
    parts: list[tuple[Projection, ...]] = []
    seen: set[str] = set()
    for p in projections:
        if p.name not in seen:
            seen |= part_of[p.name]
            parts.append(tuple(q for q in projections if q.name in part_of[p.name]))
    return parts


def in_bins(parts: list[tuple[Projection, ...]], bins: int) -> list[tuple[Projection, ...]]:
    """Independent parts packed into at most `bins` parts (each read by one reader),
    the heaviest first into the lightest bin; a part weighs its tables."""
    loads: list[tuple[int, list[Projection]]] = [(0, []) for _ in range(min(bins, len(parts)))]
    for part in sorted(parts, key=lambda ps: -sum(len(p.tables) for p in ps)):
        weight, members = min(loads, key=lambda load: load[0])
        loads.remove((weight, members))
        loads.append((weight + sum(len(p.tables) for p in part), [*members, *part]))
    order = {p.name: i for i, p in enumerate(ALL)}
    return [tuple(sorted(members, key=lambda p: order[p.name])) for _, members in loads]


class Rebuild:
    """`processes` > 1: the independent parts of the rebuild (`independent_parts`),
    packed into that many (`in_bins`), are built each in a child process from offset 0
    to the end of the topic, to its own cut; the swap stays one transaction here."""

    def __init__(self, *, url: str, bootstrap: str, topic: str, names: Iterable[str],
                 group: str = GROUP, batch: int = 5000, cache_rows: int = 500_000,
                 processes: int = 1, consumer_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.engine = projections_engine(url)
        self.bootstrap, self.topic, self.group, self.batch = bootstrap, topic, group, batch
        self.cache_rows, self.consumer_options = cache_rows, consumer_options
        self.projections = rebuild_set(names)
        self.names = tuple(p.name for p in self.projections)
        self.report = RebuildReport(self.names)
        self.metadata = MetaData()
        self.real = {str(t.name): t for p in self.projections for t in p.tables}
        self.shadows = {name: shadow_table(t, self.metadata) for name, t in self.real.items()}
        split = (in_bins(independent_parts(self.projections), processes) if processes > 1
                 else [self.projections])
        self.parts = [Part(projections) for projections in split]
        self.processes = len(self.parts)
        MemberOffsets(self.engine, self.names)  # the offsets' tables exist
        self.conn: Connection | None = None

    # -- phase 0: empty shadows ---------------------------------------------------------
    def prepare(self) -> None:
        """Drop what a failed rebuild left, create empty shadow tables (without their
        secondary indexes, built once the rows are in), open the topic at offset 0."""
        conn = self._connection()
        with conn.begin():
            for shadow in self.shadows.values():
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{shadow.name}"')
                conn.execute(CreateTable(shadow))  # no indexes: rows load faster
        if self.processes <= 1:
            self._open(self.parts[0], None)

    def _open(self, part: Part, start: dict[int, int] | None) -> None:
        """A reader from offset 0 with a handler over empty shadows, or from `start` (a
        child's cut) with one that reads what the shadows hold."""
        tables = {str(t.name): self.shadows[str(t.name)]
                  for p in part.projections for t in p.tables}
        part.handler = ProjectionHandler(self.engine, part.projections, self.cache_rows,
                                         group=None, tables=tables, fresh=start is None)
        part.reader = TopicReader(self.bootstrap, self.topic, self.batch,
                                  self.consumer_options, start=start)

    # -- phase 1: offset 0 to the end ----------------------------------------------------
    def build(self, progress: Progress | None = None, *, idle_ms: int = 200,
              complete: Complete | None = None) -> RebuildReport:
        """Fold the topic from offset 0 until every partition is read to its end.

        `complete`: when the topic is still being written (a publisher following the
        store), set once it will get no more records; the build reads on past each end
        it reaches until then. A `multiprocessing` Event (spawn context), so that the
        children of a parallel build see it too.
        """
        started = time.perf_counter()
        if self.processes <= 1:
            self._build(self.parts[0], progress, idle_ms, complete)
        else:
            self._build_in_children(progress, complete)
        self.report.build_seconds += time.perf_counter() - started
        return self.report

    def _build(self, part: Part, progress: Progress | None, idle_ms: int,
               complete: Complete | None = None) -> None:
        with frozen_between_batches():
            self._build_batches(part, progress, idle_ms, complete)

    def _build_batches(self, part: Part, progress: Progress | None, idle_ms: int,
                       complete: Complete | None) -> None:
        reader = self._reader(part)
        conn = self._connection()
        total = reader.size()
        collector = BatchCollector()
        while True:
            released = reader.next_batch(idle_ms)
            if released:
                with conn.begin():
                    self._fold(conn, part, released)
                self._handler(part).committed()
                del released
                collector.after_batch()
            # complete first: set before the end is read, no record can come after it
            elif (complete is None or complete.is_set()) and reader.at_end():
                break
            if progress is not None:
                total = max(total, reader.read)
                progress(reader.read, total)
        if progress is not None:
            progress(reader.read, reader.read)
        self.report.records = max(self.report.records, reader.read)
        self.report.undecodable = max(self.report.undecodable, reader.undecodable)
        part.cut = reader.cut()

    def _build_in_children(self, progress: Progress | None, complete: Complete | None
                           ) -> None:
        context = multiprocessing.get_context("spawn")
        counters = context.Array("q", [0, 0] * len(self.parts))  # (read, total) a part
        results = context.Queue()
        settings = {"url": self.url, "bootstrap": self.bootstrap, "topic": self.topic,
                    "group": self.group, "batch": self.batch, "cache_rows": self.cache_rows,
                    "consumer_options": self.consumer_options}
        waiting = list(enumerate(self.parts))
        running: dict[int, Any] = {}
        done: dict[int, dict[str, Any]] = {}
        try:
            while len(done) < len(self.parts):
                while waiting and len(running) < self.processes:
                    slot, part = waiting.pop(0)
                    child = context.Process(target=_build_in_child, daemon=True, args=(
                        settings, part.names, slot, counters, results, complete))
                    child.start()
                    running[slot] = child
                with contextlib.suppress(queue.Empty):
                    slot, outcome = results.get(timeout=0.2)
                    running.pop(slot).join()
                    if "error" in outcome:
                        raise RebuildError(f"building {', '.join(self.parts[slot].names)}: "
                                           f"{outcome['error']}")
                    done[slot] = outcome
                for slot, child in list(running.items()):
                    if not child.is_alive() and results.empty():
                        raise RebuildError(f"building {', '.join(self.parts[slot].names)}: "
                                           f"the process died (exit {child.exitcode})")
                if progress is not None:
                    read = sum(counters[2 * i] for i in range(len(self.parts)))
                    total = sum(max(counters[2 * i + 1], 1) for i in range(len(self.parts)))
                    progress(read, max(total, read))
        finally:
            for child in running.values():
                child.terminate()
                child.join()
        for slot, outcome in done.items():
            self.parts[slot].cut = {int(p): o for p, o in outcome["cut"].items()}
            self.report.folded = max(self.report.folded, outcome["folded"])  # each, all
            self.report.failed += outcome["failed"]
            self.report.undecodable = max(self.report.undecodable, outcome["undecodable"])
            self.report.records = max(self.report.records, outcome["read"])

    # -- phase 2: the swap ---------------------------------------------------------------
    def swap(self) -> RebuildReport:
        """One transaction: catch up with the runner, old tables out, shadows in, the
        rebuilt projections' offsets set to the rebuild's, their epochs bumped."""
        conn = self._connection()
        started = time.perf_counter()
        self._index_shadows(conn)
        with conn.begin():
            lock_group(conn, self.group)
            for part in self.parts:
                self._catch_up(conn, part)
            self._carry_relay_marks(conn)
            for name in self.real:
                self._replace(conn, name)
            for part in self.parts:
                for name in part.names:
                    set_member_offsets(conn, self.group, self.topic, name, part.cut)
                    bump_epoch(conn, self.group, name)
        self.report.offsets = dict(self.parts[0].cut)
        for part in self.parts[1:]:  # the furthest, when the parts stopped apart
            for p, o in part.cut.items():
                self.report.offsets[p] = max(self.report.offsets.get(p, 0), o)
        with self.engine.connect() as counting:
            for name, table in self.real.items():
                self.report.rows[name] = int(counting.execute(
                    select(text("count(*)")).select_from(table)).scalar_one())
        self.report.swap_seconds = time.perf_counter() - started
        return self.report

    def _catch_up(self, conn: Connection, part: Part) -> None:
        """Fold on until the part is at least where the runner stored its projections
        were (the runner may have gone on while the rebuild read)."""
        stored = member_offsets(conn, self.group, self.topic, part.names)
        target: dict[int, int] = {}
        for offsets in stored.values():
            for p, o in offsets.items():
                target[p] = max(target.get(p, 0), o)
        if all(part.cut.get(p, 0) >= o for p, o in target.items()):
            return
        if part.reader is None:  # built in a child: on from its cut
            self._open(part, part.cut)
        reader, deadline = self._reader(part), time.monotonic() + 300
        while any(reader.cut().get(p, 0) < o for p, o in target.items()):
            if time.monotonic() > deadline:
                raise RebuildError(f"the topic does not reach the runner's offsets {target}")
            released = reader.next_batch(200)
            if released:
                self._fold(conn, part, released)
                self._handler(part).committed()
                self.report.caught_up += len(released)
        part.cut = reader.cut()

    def _fold(self, conn: Connection, part: Part, deliveries: Sequence[Delivery]) -> None:
        """Fold a batch; if a fold refuses a record, the batch again one record at a
        time, leaving out the refused ones — as the runner does (it dead-letters them).
        A fold raises before anything is written, so nothing is to be undone."""
        handler = self._handler(part)
        try:
            handler.handle(conn, deliveries)
            self.report.folded += len(deliveries)
            return
        except SQLAlchemyError:
            raise
        except Exception:
            handler.rolled_back()
        for delivery in deliveries:
            try:
                handler.handle(conn, [delivery])
            except SQLAlchemyError:
                raise
            except Exception:
                handler.rolled_back()
                self.report.failed += 1
                continue
            handler.committed()  # the next record reads what this one wrote
            self.report.folded += 1

    def _index_shadows(self, conn: Connection) -> None:
        """PostgreSQL: the shadows' indexes, under their shadow names, before the swap
        (renaming them inside it is instant). SQLite cannot rename an index: the swap
        builds them under the real names."""
        if conn.dialect.name == "sqlite":
            return
        with conn.begin():
            for shadow in self.shadows.values():
                for index in shadow.indexes:
                    conn.execute(CreateIndex(index, if_not_exists=True))

    def _carry_relay_marks(self, conn: Connection) -> None:
        existing = set(inspect(conn).get_table_names())
        for name, column in RELAY_MARKS.items():
            if name not in self.real or name not in existing:
                continue
            real, shadow = self.real[name], self.shadows[name]
            pk = next(iter(real.primary_key.columns)).name
            marked = select(real.c[pk]).where(real.c[column] == true())
            conn.execute(update(shadow).where(shadow.c[pk].in_(marked))
                         .values({column: True}))

    def _replace(self, conn: Connection, name: str) -> None:
        real, shadow = self.real[name], self.shadows[name]
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'ALTER TABLE "{shadow.name}" RENAME TO "{name}"')
        if conn.dialect.name == "postgresql":
            pk = inspect(conn).get_pk_constraint(name).get("name")
            if pk and pk != f"{name}_pkey":
                conn.exec_driver_sql(f'ALTER INDEX "{pk}" RENAME TO "{name}_pkey"')
            for index in shadow.indexes:
                real_index = str(index.name)[:-len(SHADOW)]
                conn.exec_driver_sql(f'ALTER INDEX "{index.name}" RENAME TO "{real_index}"')
        else:
            for index in real.indexes:
                conn.execute(CreateIndex(index))

    # -- plumbing -------------------------------------------------------------------------
    def _reader(self, part: Part) -> TopicReader:
        if part.reader is None:
            raise RebuildError("prepare() first")
        return part.reader

    def _handler(self, part: Part) -> ProjectionHandler:
        if part.handler is None:
            raise RebuildError("prepare() first")
        return part.handler

    def _connection(self) -> Connection:
        """One connection for the whole rebuild; on SQLite it waits for the runner's
        batches as long as they take."""
        if self.conn is None:
            self.conn = self.engine.connect()
            if self.conn.dialect.name == "sqlite":
                self.conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_LOCK_WAIT_MS}")
            self.conn.commit()
        return self.conn

    def discard(self) -> None:
        """Drop the shadows (a rebuild given up before its swap)."""
        conn = self._connection()
        with conn.begin():
            for shadow in self.shadows.values():
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{shadow.name}"')

    def close(self) -> None:
        for part in self.parts:
            if part.reader is not None:
                part.reader.close()
                part.reader = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.engine.dispose()


def _build_in_child(settings: dict[str, Any], names: tuple[str, ...], slot: int,
                    counters: Any, results: Any, complete: Complete | None = None) -> None:
    """A child's part of `Rebuild.build`: one part from offset 0 to the end, into the
    shadows the parent made; its cut and counts go back on `results`."""
    try:
        rebuild = Rebuild(names=names, **settings)
        try:
            part = rebuild.parts[0]
            rebuild._open(part, None)

            def progress(done: int, total: int) -> None:
                counters[2 * slot], counters[2 * slot + 1] = done, total

            rebuild._build(part, progress, 200, complete)
            report = rebuild.report
            results.put((slot, {"cut": part.cut, "read": report.records,
                                "folded": report.folded, "failed": report.failed,
                                "undecodable": report.undecodable}))
        finally:
            rebuild.close()
    except BaseException as error:  # reported by the parent
        results.put((slot, {"error": f"{type(error).__name__}: {error}"}))


def rebuild_projections(*, url: str, bootstrap: str, topic: str, names: Iterable[str],
                        group: str = GROUP, batch: int = 5000, processes: int = 1,
                        progress: Progress | None = None) -> RebuildReport:
    """Rebuild the named projections (with those they read and those that read them)
    from offset 0 and swap them in; on failure before the swap, the shadows are dropped
    and the old tables stay."""
    rebuild = Rebuild(url=url, bootstrap=bootstrap, topic=topic, names=names, group=group,
                      batch=batch, processes=processes)
    try:
        rebuild.prepare()
        try:
            rebuild.build(progress)
            return rebuild.swap()
        except BaseException:
            rebuild.discard()
            raise
    finally:
        rebuild.close()
