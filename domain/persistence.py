"""The event store's SQL, tuned: eventsourcing-sqlalchemy's recorders with their hot
paths in SQLAlchemy Core instead of the ORM.

Ingest loads every stream a request touches and saves thousands of events a second; the
ORM's per-row unit of work cost about a millisecond a load. Same tables, same rows, same
transaction and table lock as the library's recorders: only the statements differ. This
is the only module of `domain/` that knows SQL, and the Ledger reaches it by topic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Lock
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import (
    SQLAlchemyAggregateRecorder,
    SQLAlchemyApplicationRecorder,
)
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from domain.compression import compress, decompress
from domain.settings import Settings

# Connections that read scattered rows at once (select_notifications_by_ids, and the
# index reads of an establishment's history, replay/history.py).
READERS = 8
T = TypeVar("T")
R = TypeVar("R")


def read_apart(readers: int, read: Callable[[int, list[T]], list[R]], chunks: list[T]
               ) -> list[R]:
    """The chunks split into at most `readers` runs of adjacent chunks, each run read by
    `read(i, run)` in a thread of its own; the answers in the chunks' order."""
    if readers <= 1 or len(chunks) <= 1:
        return read(0, chunks)
    runs = min(readers, len(chunks))
    size = -(-len(chunks) // runs)
    with ThreadPoolExecutor(runs) as pool:
        parts = pool.map(read, range(runs), [chunks[i * size:(i + 1) * size]
                                             for i in range(runs)])
        return [row for part in parts for row in part]


class _CoreSelect:
    """Stream reads on one autocommit driver connection with SQL rendered once.

    Reads see committed rows only, which is all a loader needs: streams with pending
    events are held in the unit of work and never reloaded before they are saved.
    """

    events_record_cls: Any
    datastore: Any
    _reader: Any = None
    _sql: dict[tuple[bool, bool, bool, bool], str]
    _id: Callable[[UUID | str], object]
    _mark: str
    _held: list[Any]  # the pool's wrappers of the reader connections
    _readers: list[Any]  # more autocommit connections, for reads made several at once
    _apart_lock: Lock

    def _connection(self) -> Any:
        if self._reader is None:
            if self.datastore.engine.dialect.name == "sqlite":
                self._mark, self._id = "?", _uuid_bytes
            else:
                self._mark, self._id = "%s", _same
            self._held, self._readers, self._apart_lock = [], [], Lock()
            self._reader, self._sql = self._autocommit(), {}
        return self._reader

    def _autocommit(self) -> Any:
        # Hold the pool's wrapper too: dropping it would hand this autocommit connection
        # back to the pool, where a writer's transaction would get it.
        pooled = self.datastore.engine.raw_connection()
        self._held.append(pooled)
        driver = pooled.driver_connection
        if self.datastore.engine.dialect.name == "sqlite":
            driver.isolation_level = None
        else:
            driver.autocommit = True
        return driver

    def _reader_of(self, i: int) -> Any:
        """The i-th reader connection (the first is `_connection`'s), opened once."""
        if i == 0:
            return self._connection()
        while len(self._readers) < i:
            self._readers.append(self._autocommit())
        return self._readers[i - 1]

    def _statement(self, gt: bool, lte: bool, desc: bool, limit: bool) -> str:
        key = (gt, lte, desc, limit)
        if key not in self._sql:
            table: Table = self.events_record_cls.__table__
            m = self._mark
            sql = (f"SELECT originator_version, topic, state FROM {table.fullname} "
                   f"WHERE originator_id = {m}")
            sql += f" AND originator_version > {m}" if gt else ""
            sql += f" AND originator_version <= {m}" if lte else ""
            sql += " ORDER BY originator_version" + (" DESC" if desc else "")
            sql += f" LIMIT {m}" if limit else ""
            self._sql[key] = sql
        return self._sql[key]

    def select_events(self, originator_id: UUID | str, gt: int | None = None,
                      lte: int | None = None, desc: bool = False,
                      limit: int | None = None) -> list[StoredEvent]:
        conn = self._connection()
        sql = self._statement(gt is not None, lte is not None, desc, limit is not None)
        params = [self._id(originator_id)] + [p for p in (gt, lte, limit) if p is not None]
        rows = conn.execute(sql, params).fetchall()
        return [StoredEvent(originator_id=originator_id, originator_version=r[0], topic=r[1],
                            state=decompress(bytes(r[2]))) for r in rows]


def _uuid_bytes(value: UUID | str) -> bytes:
    return (value if isinstance(value, UUID) else UUID(value)).bytes


def _same(value: UUID | str) -> UUID | str:
    return value


class CoreAggregateRecorder(_CoreSelect, SQLAlchemyAggregateRecorder):
    """Snapshots: read with one Core statement."""


INDEX_METADATA = MetaData()
EVENT_INDEX = Table(
    "sijil_event_index", INDEX_METADATA,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("stream", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("establishment_id", String(16)),
    Column("occurred_at", String(27), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("credential_id", String(128)),
    Column("session_id", String(128)),
    Column("device_id", String(128)),
    Column("ip", String(45)),
    # An establishment's history and its workers' streams (replay/history.py), answered
    # from the index alone, as the audit's below: with only (establishment_id, position)
    # each of the largest establishment's 17,000 entries went to its table row, one
    # cold page read after another (0.32 s of a 1.16 s as-of at F = 0.2).
    Index("sijil_event_index_establishment_events", "establishment_id", "position",
          "stream", "event_type", "occurred_at"),
    Index("sijil_event_index_stream_events", "stream", "version", "position",
          "occurred_at"),
    # The credential audit's (replay/credential_audit.py): each answered from the index
    # alone. `position` is not the table's rowid (a BIGINT key), so an index without it
    # sent every entry to a table row: the account's whole history read from a cold disk
    # to list its few credentials (0.06-0.7 s at F = 0.05, the audit's slowest step).
    Index("sijil_event_index_credential_time", "credential_id", "occurred_at", "position"),
    Index("sijil_event_index_account_time", "account_id", "occurred_at", "position"),
)
# Indexes of earlier stores that those replace: dropped when a store is opened. (The
# last listed an account's credentials from one more B-tree entry for every event; the
# pairs below are a few rows a batch. F = 0.2's ingest was no faster without it, 1,668
# against 1,714 requests/s on the same day; its ratio to the library's raw save in the
# same run, 0.376 against session 5's 0.369, puts the drop from 2,892 on the host, not
# on the widened indexes above: bench/RESULTS.md.)
PAIRS_PREDATE = ("sijil_event_index_credential", "sijil_event_index_account",
                 "sijil_event_index_account_credential")
# Narrower forms of the history's indexes above.
NARROWER = ("sijil_event_index_establishment", "sijil_event_index_stream")
SUPERSEDED_INDEXES = (*PAIRS_PREDATE, *NARROWER)
# Every (account, credential) pair the index holds, kept in the same transaction: the
# credential audit asks an account's credentials first, and an account has a handful
# and may have tens of thousands of events.
ACCOUNT_CREDENTIALS = Table(
    "sijil_account_credentials", INDEX_METADATA,
    Column("account_id", String(64), primary_key=True),
    Column("credential_id", String(128), primary_key=True),
)


def _migrate_indexes(engine: Engine) -> None:
    """A store made before an index was added gets it, and loses the ones it replaces
    (`create_all` creates a table's indexes only with the table); a store made before
    the credential pairs gets them from its index."""
    present = {i["name"] for i in inspect(engine).get_indexes(EVENT_INDEX.name)}
    missing = [i for i in EVENT_INDEX.indexes if i.name not in present]
    stale = [name for name in SUPERSEDED_INDEXES if name in present]
    if not missing and not stale:
        return
    with engine.begin() as conn:
        for index in missing:
            index.create(conn)
        if set(stale) & set(PAIRS_PREDATE):  # older than the pairs: its pairs, from the index
            idx = EVENT_INDEX.c
            conn.execute(ACCOUNT_CREDENTIALS.delete())
            conn.execute(ACCOUNT_CREDENTIALS.insert().from_select(
                ["account_id", "credential_id"],
                select(idx.account_id, idx.credential_id).distinct().where(
                    idx.credential_id.is_not(None))))
        for name in stale:
            conn.execute(text(f"DROP INDEX {conn.dialect.identifier_preparer.quote(name)}"))


class CoreApplicationRecorder(_CoreSelect, SQLAlchemyApplicationRecorder):
    """Also keeps the store's own index of who and what, in the events' transaction: the
    auditor's questions (an establishment's history, a credential's requests) are asked
    of the system of record, not only of rebuildable read models."""

    compressing = True  # the events' rows: set from SIJIL_STORE_COMPRESSION by the factory

    def create_table(self) -> None:
        super().create_table()
        INDEX_METADATA.create_all(self.datastore.engine)
        _migrate_indexes(self.datastore.engine)

    def keep_pages(self, mib: int) -> None:
        """SQLite: each connection opened from now on keeps up to `mib` MiB of the store's
        pages (SQLite's default is 2 MiB). For the process that writes the store alone,
        the ingest's writer: each event writes a leaf of each of the store's B-trees, at
        random places, and on a machine that pages out file pages unread for a minute
        (this one: DAMON reclaim, bench/RESULTS.md) the F = 1.0 ingest's writer read
        those leaves back from the disk. A process's own memory is not paged out that way,
        and a connection's pages stay valid across its own commits (WAL); another
        writer's commit would empty them."""
        engine = self.datastore.engine
        if engine.dialect.name != "sqlite":
            return
        event.listen(engine, "connect", functools.partial(_cache_size, kib=mib * 1024))
        engine.dispose()  # the connections opened so far are opened again, with it

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *,
                             inclusive_of_start: bool = True) -> list[Notification]:
        """The log in id order, one statement a page: what the publisher reads."""
        if topics:
            return [Notification(id=n.id, originator_id=n.originator_id,
                                 originator_version=n.originator_version, topic=n.topic,
                                 state=decompress(n.state))
                    for n in super().select_notifications(
                        start, limit, stop, topics, inclusive_of_start=inclusive_of_start)]
        conn = self._connection()
        table: Table = self.events_record_cls.__table__
        m = self._mark
        low = start if start is not None else 0
        sql = (f"SELECT id, originator_id, originator_version, topic, state FROM "
               f"{table.fullname} WHERE id {'>=' if inclusive_of_start else '>'} {m}")
        params: list[object] = [low]
        if stop is not None:
            sql += f" AND id <= {m}"
            params.append(stop)
        sql += f" ORDER BY id LIMIT {m}"
        params.append(limit)
        rows = conn.execute(sql, params).fetchall()
        return [Notification(id=r[0], originator_id=self._uuid(r[1]), originator_version=r[2],
                             topic=r[3], state=decompress(bytes(r[4]))) for r in rows]

    @property
    def readers(self) -> int:
        """Connections that may read at once: one for an in-memory SQLite store, whose
        engine hands every thread the same connection."""
        return 1 if self.datastore.is_sqlite_in_memory_db else READERS

    def select_notifications_by_ids(self, ids: Sequence[int]) -> list[Notification]:
        """Chosen notifications, in id order: an establishment's history from the index.

        The chunks are read by `readers` connections at once. The events
        are scattered through the store, a page or two each, and a cold disk answers
        many reads at once far faster than one after another (this machine's disk:
        about 100 us a 4 KiB read one at a time, 22 us with eight in flight). The
        driver lets go of the GIL while SQLite reads. Each connection sees its own
        snapshot; the ids are of committed events, which never change.
        """
        self._connection()  # opened first: it sets the driver's parameter mark
        chunks = [list(ids[start:start + 500]) for start in range(0, len(ids), 500)]
        with self._apart_lock:  # each connection in one thread at a time
            rows = read_apart(self.readers, self._rows_by_ids, chunks)
        # Made here, not in the readers: Python work in eight threads only contends for
        # the GIL (a warm read was a quarter slower so).
        return sorted((Notification(id=r[0], originator_id=self._uuid(r[1]),
                                    originator_version=r[2], topic=r[3],
                                    state=decompress(bytes(r[4])))
                       for r in rows), key=lambda n: n.id)

    def _rows_by_ids(self, i: int, chunks: list[list[int]]) -> list[Any]:
        conn = self._reader_of(i)
        table: Table = self.events_record_cls.__table__
        return [row for ids in chunks for row in conn.execute(
            f"SELECT id, originator_id, originator_version, topic, state FROM "
            f"{table.fullname} WHERE id IN ({', '.join([self._mark] * len(ids))})",
            ids).fetchall()]

    def _stored(self, state: bytes) -> bytes:
        """A row's bytes as written: compressed (domain/compression.py) unless the
        setting says not to. Here, not in the mapper, so that ingest's writer process
        pays for it and every reader above the recorder sees the ledger's own bytes."""
        return compress(state) if self.compressing else state

    def select_stream_ids(self) -> Iterator[UUID]:
        """Every stream's id, from its first event (the unique index on stream and
        version covers the read)."""
        conn = self._connection()
        table: Table = self.events_record_cls.__table__
        cursor = conn.execute(f"SELECT originator_id FROM {table.fullname} "
                              f"WHERE originator_version = {self._mark}", [1])
        while rows := cursor.fetchmany(10_000):
            yield from (self._uuid(r[0]) for r in rows)

    def _uuid(self, value: object) -> UUID:
        if isinstance(value, UUID):
            return value
        return UUID(bytes=bytes(value)) if isinstance(value, bytes | memoryview) \
            else UUID(str(value))

    def _insert_stored_events(self, session: Session, stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> Sequence[int]:
        if self.datastore.engine.dialect.name == "sqlite":
            return self._insert_on_sqlite(session, stored_events, kwargs.get("index"))
        table: Table = self.events_record_cls.__table__
        rows = [{"originator_id": e.originator_id, "originator_version": e.originator_version,
                 "topic": e.topic, "state": self._stored(e.state)} for e in stored_events]
        if not rows:
            return []
        # The library locks the table on PostgreSQL so that ids commit in order: keep it.
        self._lock_table(session)
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = [row[0] for row in session.execute(stmt, rows)]
        index = kwargs.get("index")
        if index:
            session.execute(insert(EVENT_INDEX), [
                {**entry, "position": position} for entry, position in zip(index, ids,
                                                                          strict=True)])
            pairs = _credential_pairs(index)
            if pairs:
                session.execute(pg_insert(ACCOUNT_CREDENTIALS).on_conflict_do_nothing(), [
                    {"account_id": a, "credential_id": c} for a, c in pairs])
        self._notify_channel(session)
        return ids


    def _insert_on_sqlite(self, session: Session, stored_events: Sequence[StoredEvent],
                          index: Sequence[dict[str, Any]] | None) -> list[int]:
        """The same rows through the session's own driver connection, in its transaction:
        at ingest, SQLAlchemy's per-row bind processing (the UUID type, insertmanyvalues)
        cost a fifth of the save. Multi-row VALUES with RETURNING: SQLite numbers the
        rows of one statement in order, and only one writer holds the database."""
        if not stored_events:
            return []
        driver = session.connection().connection.driver_connection
        assert driver is not None
        table = self.events_record_cls.__table__.fullname
        ids: list[int] = []
        for begin in range(0, len(stored_events), _SQLITE_ROWS):
            chunk = stored_events[begin:begin + _SQLITE_ROWS]
            params = [value for e in chunk for value in (
                _uuid_bytes(e.originator_id), e.originator_version, e.topic,
                self._stored(e.state))]
            marks = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
            ids += sorted(row[0] for row in driver.execute(
                f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                f"VALUES {marks} RETURNING id", params).fetchall())
        if index:
            driver.executemany(_INDEX_INSERT, [
                (position, *(entry[c] for c in _INDEX_COLUMNS))
                for entry, position in zip(index, ids, strict=True)])
            driver.executemany(_PAIR_INSERT, _credential_pairs(index))
        return ids


_SQLITE_ROWS = 1000  # rows a statement: 4,000 parameters, under SQLite's limit
_INDEX_COLUMNS = tuple(c.name for c in EVENT_INDEX.columns if c.name != "position")
_INDEX_INSERT = (f"INSERT INTO {EVENT_INDEX.name} (position, {', '.join(_INDEX_COLUMNS)}) "
                 f"VALUES ({', '.join(['?'] * (len(_INDEX_COLUMNS) + 1))})")
_PAIR_INSERT = (f"INSERT INTO {ACCOUNT_CREDENTIALS.name} (account_id, credential_id) "
                f"VALUES (?, ?) ON CONFLICT DO NOTHING")


def _cache_size(dbapi_connection: Any, _record: Any, kib: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size = -{int(kib)}")  # negative: KiB, not pages
    cursor.close()


def _credential_pairs(index: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted({(e["account_id"], e["credential_id"]) for e in index
                   if e["credential_id"] is not None})


class CoreSQLAlchemyFactory(SQLAlchemyFactory):
    aggregate_recorder_class = CoreAggregateRecorder
    application_recorder_class = CoreApplicationRecorder

    def application_recorder(self) -> CoreApplicationRecorder:
        recorder = super().application_recorder()
        assert isinstance(recorder, CoreApplicationRecorder)
        recorder.compressing = Settings().store_compression == "zstd"
        return recorder


FACTORY_TOPIC = "domain.persistence:CoreSQLAlchemyFactory"


def shared_by_processes(url: str) -> bool:
    """Whether another process opening `url` reaches the same store: not so for an
    in-memory SQLite database, which each connection holds on its own."""
    parsed = make_url(url)
    return not (parsed.get_backend_name() == "sqlite"
                and parsed.database in (None, "", ":memory:"))
