"""Running projections over the events topic: a SQL handler for the subscriber runtime.

Each batch: the rows its records will read are fetched in one query a table (those not
already cached), every record is folded through every projection into an overlay, and
the overlay is written with one bulk upsert a table — in the transaction that stores the
group's offsets. The cache learns the overlay only when that transaction commits.

Every projection has offsets of its own (consumers/offsets.py, `MemberOffsets`): the
batch's transaction first takes the group's lock and reads them, and a record is folded
into a projection only at or after that projection's offset in the record's partition —
so a projection rebuilt ahead of the others (replay/rebuild.py) skips what it already
has. A projection whose epoch moved (its tables were swapped by a rebuild) loses its
cached rows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    inspect,
    select,
    tuple_,
)
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from consumers.offsets import MemberOffsets, lock_group, member_epochs, member_offsets
from consumers.runtime import Delivery
from projections.database import METADATA, upsert
from projections.rows import Key, Projection, Row

GROUP = "sijil-projections"
ABSENT: Row = {}  # a cached "no such row"
CacheKey = tuple[str, Key]


class Overlay:
    """The rows of one batch, over the cache: what the folds see and what gets written."""

    def __init__(self, cache: OrderedDict[CacheKey, Row]) -> None:
        self.cache = cache
        self.puts: dict[CacheKey, Row] = {}
        self.appends: dict[str, list[Row]] = {}

    def get(self, table: str, key: Key) -> Row | None:
        found = self.puts.get((table, key))
        if found is None:
            found = self.cache.get((table, key))
        if found is None or found is ABSENT:
            return None
        return dict(found)

    def put(self, table: str, key: Key, row: Row) -> None:
        self.puts[(table, key)] = row

    def append(self, table: str, row: Row) -> None:
        self.appends.setdefault(table, []).append(row)


class OutdatedReadModels(RuntimeError):
    """Read models made before a projection gained a table: folding on would fill the
    new table from here on only, and its readers would miss the history before."""


def check_tables(engine: Engine, projections: Sequence[Projection]) -> None:
    present = set(inspect(engine).get_table_names())
    for p in projections:
        missing = [t.name for t in p.tables if t.name not in present]
        if missing and len(missing) < len(p.tables):
            raise OutdatedReadModels(
                f"read models: projection {p.name} has no table {', '.join(missing)} "
                f"(they were made before it was added); rebuild it from offset 0 with "
                f"`sijil rebuild {p.name}`")


def add_indexes(engine: Engine, tables: Sequence[Table]) -> None:
    """The indexes a table gained since the read models were made (`create_all` makes
    a table's indexes only with the table): an index changes no row, so no rebuild."""
    found = inspect(engine)
    for table in tables:
        present = {i["name"] for i in found.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in present:
                index.create(engine)


class ProjectionHandler:
    """Folds batches of deliveries into the projections' tables.

    `group`: the consumer group whose per-projection offsets decide what each projection
    folds (None: fold everything, as a rebuild does). `tables`: where each table's rows
    go, by the name the folds use (default: the projections' own tables). `fresh`: the
    tables start empty, so a row never written is known absent without asking.
    """

    def __init__(self, engine: Engine, projections: Sequence[Projection],
                 cache_rows: int = 500_000, *, group: str | None = GROUP,
                 tables: Mapping[str, Table] | None = None, fresh: bool = False) -> None:
        self.engine = engine
        self.projections = tuple(projections)
        if tables is None:
            check_tables(engine, projections)
            self.tables: dict[str, Table] = {t.name: t for p in projections for t in p.tables}
            METADATA.create_all(engine, tables=list(self.tables.values()))
            add_indexes(engine, list(self.tables.values()))
        else:
            self.tables = dict(tables)
        self.owner = {t.name: p.name for p in projections for t in p.tables}
        self.cache: OrderedDict[CacheKey, Row] = OrderedDict()
        self.cache_rows = cache_rows
        self._pending: Overlay | None = None
        self.group = group
        self.offsets = (MemberOffsets(engine, [p.name for p in projections])
                        if group is not None else None)
        self.epochs: dict[str, int] | None = None
        self._plain: dict[str, list[tuple[str, Any]] | None] = {}
        # Fresh tables: the keys evicted from the cache are the only ones worth asking.
        # Not for ever: the set would grow with the history (every worker, session and
        # account ever evicted), so once it holds as many keys as the cache holds rows
        # the handler asks the database for every row it does not hold, as on tables
        # that were not fresh. Memory stays bounded by `cache_rows`.
        self.evicted: set[CacheKey] | None = set() if fresh else None

    def handle(self, conn: Connection, deliveries: Sequence[Delivery]) -> None:
        work = self._work(conn, deliveries)
        self._prefetch(conn, work)
        overlay = Overlay(self.cache)
        for record, projections in work:
            for projection in projections:
                projection.fold(overlay, record)
        self._write(conn, overlay)
        self._pending = overlay

    def committed(self) -> None:
        if self._pending is not None:
            for key, row in self._pending.puts.items():
                self.cache[key] = row
                self.cache.move_to_end(key)
            while len(self.cache) > self.cache_rows:
                key, _ = self.cache.popitem(last=False)
                if self.evicted is not None:
                    self.evicted.add(key)
            if self.evicted is not None and len(self.evicted) > self.cache_rows:
                self.evicted = None  # as large as the cache: ask for every uncached row
        self._pending = None

    def rolled_back(self) -> None:
        self._pending = None

    # -- which projection folds which record --------------------------------------------
    def _work(self, conn: Connection, deliveries: Sequence[Delivery]
              ) -> list[tuple[dict[str, Any], tuple[Projection, ...]]]:
        if self.group is None or not deliveries:
            return [(d.record, self.projections) for d in deliveries]
        names = [p.name for p in self.projections]
        lock_group(conn, self.group)  # before any read: a swap commits before or after us
        stored = member_offsets(conn, self.group, deliveries[0].topic, names)
        self._forget_rebuilt(member_epochs(conn, self.group, names))
        # Per partition, the offset from which every projection folds.
        everyone = {d.partition: max(stored[n].get(d.partition, 0) for n in names)
                    for d in deliveries}
        work = []
        for d in deliveries:
            if d.offset >= everyone[d.partition]:
                work.append((d.record, self.projections))
            else:
                work.append((d.record, tuple(p for p in self.projections
                                             if d.offset >= stored[p.name].get(d.partition, 0))))
        return work

    def _forget_rebuilt(self, epochs: dict[str, int]) -> None:
        """Drop the cached rows of projections whose tables were swapped since."""
        if self.epochs is not None:
            moved = {name for name, epoch in epochs.items() if self.epochs.get(name) != epoch}
            if moved:
                for key in [k for k in self.cache if self.owner.get(k[0]) in moved]:
                    del self.cache[key]
        self.epochs = epochs

    # -- reading and writing ------------------------------------------------------------
    def _prefetch(self, conn: Connection,
                  work: list[tuple[dict[str, Any], tuple[Projection, ...]]]) -> None:
        cache, evicted = self.cache, self.evicted
        if evicted is not None and not evicted:
            return  # fresh tables, nothing evicted: every row is in the cache or absent
        wanted: dict[str, set[Key]] = {}
        for record, projections in work:
            for projection in projections:
                for table, key in projection.reads(record):
                    if table in self.tables and (table, key) not in cache and (
                            evicted is None or (table, key) in evicted):
                        wanted.setdefault(table, set()).add(key)
        for table, keys in wanted.items():
            self._load(conn, table, sorted(keys, key=repr))
        if evicted is not None:
            for table, keys in wanted.items():
                evicted.difference_update((table, k) for k in keys)

    def _load(self, conn: Connection, name: str, keys: list[Key]) -> None:
        table = self.tables[name]
        pk = list(table.primary_key.columns)
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            where = (pk[0].in_([k[0] for k in chunk]) if len(pk) == 1
                     else tuple_(*pk).in_(chunk))
            found = {tuple(r[c.name] for c in pk): dict(r)
                     for r in conn.execute(select(table).where(where)).mappings()}
            for key in chunk:
                self.cache[(name, key)] = found.get(key, ABSENT)

    def _write(self, conn: Connection, overlay: Overlay) -> None:
        by_table: dict[str, list[Row]] = {}
        for (table, _), row in overlay.puts.items():
            by_table.setdefault(table, []).append(row)
        for table, rows in by_table.items():
            if table in self.tables:
                self._executemany(conn, table, rows, upserting=True)
        for table, rows in overlay.appends.items():
            if table in self.tables:
                self._executemany(conn, table, rows, upserting=False)

    def _executemany(self, conn: Connection, name: str, rows: list[Row], *,
                     upserting: bool) -> None:
        """On SQLite, one executemany straight to the driver, the statement made once a
        table (SQLAlchemy's parameter processing costs as much as SQLite's work); else,
        or for a table whose columns need processing, through SQLAlchemy."""
        table = self.tables[name]
        plain = self._plain.get(name) if conn.dialect.name == "sqlite" else None
        if plain is None and conn.dialect.name == "sqlite" and name not in self._plain:
            plain = self._plain[name] = _plain_columns(table)
        if plain is None:
            if upserting:
                upsert(conn, table, rows)
            else:
                conn.execute(table.insert(), rows)
            return
        sql = _sqlite_statement(conn, table, upserting)
        whole = _getter(tuple(c for c, _ in plain))
        params = []
        for row in rows:
            try:
                params.append(whole(row))
            except KeyError:  # a column left out: its default
                params.append(tuple(row.get(c, default) for c, default in plain))
        conn.exec_driver_sql(sql, params)


PLAIN_TYPES = (String, Integer, Boolean)  # Text is a String


def _plain_columns(table: Table) -> list[tuple[str, Any]] | None:
    """(column, value when a row leaves it out) for a table the SQLite driver can take
    rows of as they are; None when a column's type or default needs SQLAlchemy."""
    out = []
    for column in table.columns:
        if not isinstance(column.type, PLAIN_TYPES):
            return None
        default = column.default
        if default is None:
            out.append((column.name, None))
        elif isinstance(default, ScalarElementColumnDefault):
            out.append((column.name, default.arg))
        else:
            return None
    return out


@lru_cache(maxsize=256)
def _getter(columns: tuple[str, ...]) -> Callable[[Row], tuple[Any, ...]]:
    get = itemgetter(*columns)
    return get if len(columns) > 1 else lambda row: (get(row),)


@lru_cache(maxsize=256)
def _sqlite_sql(table_name: str, columns: tuple[str, ...], keys: tuple[str, ...],
                upserting: bool) -> str:
    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    sql = (f"INSERT INTO {q(table_name)} ({', '.join(q(c) for c in columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")
    updates = [c for c in columns if c not in keys]
    if upserting and updates:
        sql += (f" ON CONFLICT ({', '.join(q(k) for k in keys)}) DO UPDATE SET "
                + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in updates))
    elif upserting:
        sql += f" ON CONFLICT ({', '.join(q(k) for k in keys)}) DO NOTHING"
    return sql


def _sqlite_statement(conn: Connection, table: Table, upserting: bool) -> str:
    return _sqlite_sql(str(table.name), tuple(c.name for c in table.columns),
                       tuple(c.name for c in table.primary_key.columns), upserting)
