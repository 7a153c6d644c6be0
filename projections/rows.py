"""The rows a projection's fold reads and writes, and the fold's shape.

A fold is pure: given the rows it asked for and one event, it puts rows and appends
history rows through a `Rows` view; it never touches SQL or Kafka. The live runner
backs the view with a cache over the database, a rebuild with an empty one, and a test
with a dict: one function serves them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Table

Key = tuple[Any, ...]
Row = dict[str, Any]
Record = dict[str, Any]


class Rows(Protocol):
    def get(self, table: str, key: Key) -> Row | None: ...

    def put(self, table: str, key: Key, row: Row) -> None: ...

    def append(self, table: str, row: Row) -> None: ...


@dataclass(frozen=True)
class Projection:
    """A read model: its tables, the keys a record makes it read, and its fold."""

    name: str
    tables: tuple[Table, ...]
    reads: Callable[[Record], Iterable[tuple[str, Key]]]
    fold: Callable[[Rows, Record], None]
    # Projections whose rows this one reads; they fold each record first.
    requires: tuple[str, ...] = ()


@dataclass
class MemoryRows:
    """Rows in dicts: for tests and for folding a stream in memory (as-of replays)."""

    tables: dict[str, dict[Key, Row]] = field(default_factory=dict)
    history: dict[str, list[Row]] = field(default_factory=dict)

    def get(self, table: str, key: Key) -> Row | None:
        row = self.tables.get(table, {}).get(key)
        return dict(row) if row is not None else None

    def put(self, table: str, key: Key, row: Row) -> None:
        self.tables.setdefault(table, {})[key] = dict(row)

    def append(self, table: str, row: Row) -> None:
        self.history.setdefault(table, []).append(dict(row))


def fold_all(projections: Iterable[Projection], rows: Rows, records: Iterable[Record]) -> None:
    ordered = list(projections)
    for record in records:
        for projection in ordered:
            projection.fold(rows, record)
