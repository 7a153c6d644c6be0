"""Running projections over the events topic: a SQL handler for the subscriber runtime.

Each batch: the rows its records will read are fetched in one query a table (those not
already cached), every record is folded through every projection into an overlay, and
the overlay is written with one bulk upsert a table — in the transaction that stores the
group's offsets. The cache learns the overlay only when that transaction commits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, select, tuple_

from consumers.runtime import Delivery
from projections.database import METADATA, upsert
from projections.rows import Key, Projection, Row

ABSENT: Row = {}  # a cached "no such row"


class Overlay:
    """The rows of one batch, over the cache: what the folds see and what gets written."""

    def __init__(self, cache: OrderedDict[tuple[str, Key], Row]) -> None:
        self.cache = cache
        self.puts: dict[tuple[str, Key], Row] = {}
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


class ProjectionHandler:
    def __init__(self, engine: Engine, projections: Sequence[Projection],
                 cache_rows: int = 500_000) -> None:
        self.engine = engine
        self.projections = tuple(projections)
        self.tables: dict[str, Table] = {t.name: t for p in projections for t in p.tables}
        METADATA.create_all(engine, tables=list(self.tables.values()))
        self.cache: OrderedDict[tuple[str, Key], Row] = OrderedDict()
        self.cache_rows = cache_rows
        self._pending: Overlay | None = None

    def handle(self, conn: Connection, deliveries: Sequence[Delivery]) -> None:
        records = [d.record for d in deliveries]
        self._prefetch(conn, records)
        overlay = Overlay(self.cache)
        for record in records:
            for projection in self.projections:
                projection.fold(overlay, record)
        self._write(conn, overlay)
        self._pending = overlay

    def committed(self) -> None:
        if self._pending is not None:
            for key, row in self._pending.puts.items():
                self.cache[key] = row
                self.cache.move_to_end(key)
            while len(self.cache) > self.cache_rows:
                self.cache.popitem(last=False)
        self._pending = None

    def rolled_back(self) -> None:
        self._pending = None

    def _prefetch(self, conn: Connection, records: Iterable[dict[str, Any]]) -> None:
        wanted: dict[str, set[Key]] = {}
        for record in records:
            for projection in self.projections:
                for table, key in projection.reads(record):
                    if table in self.tables and (table, key) not in self.cache:
                        wanted.setdefault(table, set()).add(key)
        for table, keys in wanted.items():
            self._load(conn, self.tables[table], sorted(keys, key=repr))

    def _load(self, conn: Connection, table: Table, keys: list[Key]) -> None:
        pk = list(table.primary_key.columns)
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            where = (pk[0].in_([k[0] for k in chunk]) if len(pk) == 1
                     else tuple_(*pk).in_(chunk))
            found = {tuple(r[c.name] for c in pk): dict(r)
                     for r in conn.execute(select(table).where(where)).mappings()}
            for key in chunk:
                self.cache[(table.name, key)] = found.get(key, ABSENT)

    def _write(self, conn: Connection, overlay: Overlay) -> None:
        by_table: dict[str, list[Row]] = {}
        for (table, _), row in overlay.puts.items():
            by_table.setdefault(table, []).append(row)
        for table, rows in by_table.items():
            if table in self.tables:
                upsert(conn, self.tables[table], rows)
        for table, rows in overlay.appends.items():
            if table in self.tables:
                conn.execute(self.tables[table].insert(), rows)
