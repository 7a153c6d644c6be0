"""Consumer offsets kept beside a handler's SQL writes, in the same database.

Kafka's own committed offsets are written too, for lag reports; these are the ones a
SQL handler resumes from, because only they commit atomically with its effects.

A group whose handler serves several members (the projection runner: one consumer group,
one read model a member) also keeps offsets a member, as rows of the group
`<group>/<member>` (`MemberOffsets`). A member's offsets say up to where *its* rows are
built: a rebuild replaces one member's rows and sets its offsets alone, ahead of the
others' or not, and the group resumes from the least of them, each member skipping the
records it already has. A member's epoch grows each time its rows are replaced wholesale,
so that a handler caching them knows to drop its cache.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    false,
    select,
    text,
    update,
)

METADATA = MetaData()
OFFSETS = Table(
    "consumer_offsets", METADATA,
    Column("group_id", String(200), primary_key=True),
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", Integer, nullable=False),
)
EPOCHS = Table(
    "consumer_epochs", METADATA,
    Column("group_id", String(200), primary_key=True),  # <group>/<member>
    Column("epoch", Integer, nullable=False),
)
# How long a writer waits for another to finish before SQLite says "database is locked":
# a rebuild's swap, or the runner's batch, holds the lock for seconds, not minutes.
SQLITE_LOCK_WAIT_MS = 600_000


class SqlOffsets:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        METADATA.create_all(engine, tables=[OFFSETS])

    def load(self, group: str, topic: str) -> dict[int, int]:
        with self.engine.connect() as conn:
            return read_offsets(conn, group, topic)

    def save(self, conn: Connection, group: str, topic: str, nexts: dict[int, int]) -> None:
        write_offsets(conn, group, topic, nexts)


def read_offsets(conn: Connection, group: str, topic: str) -> dict[int, int]:
    rows = conn.execute(select(OFFSETS.c.partition, OFFSETS.c.next_offset).where(
        and_(OFFSETS.c.group_id == group, OFFSETS.c.topic == topic))).all()
    return {int(p): int(o) for p, o in rows}


def write_offsets(conn: Connection, group: str, topic: str, nexts: dict[int, int]) -> None:
    for partition, offset in nexts.items():
        where = and_(OFFSETS.c.group_id == group, OFFSETS.c.topic == topic,
                     OFFSETS.c.partition == partition)
        if conn.execute(update(OFFSETS).where(where).values(next_offset=offset)).rowcount:
            continue
        conn.execute(OFFSETS.insert().values(group_id=group, topic=topic,
                                             partition=partition, next_offset=offset))


# -- a group of members ------------------------------------------------------------------
def member_group(group: str, member: str) -> str:
    return f"{group}/{member}"


def lock_group(conn: Connection, group: str) -> None:
    """Take, until the transaction ends, the lock that serialises the writers of a group's
    offsets: the runner's batches and a rebuild's swap. Call it first in the transaction.

    PostgreSQL: an advisory transaction lock on the group's name. SQLite: the database's
    write lock, taken by a write that changes nothing (waiting for it as long as a swap
    may take); every read after it in the transaction sees the latest commit."""
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(f"sijil-offsets:{group}".encode()) - 2**31
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        return
    waited = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_LOCK_WAIT_MS}")
    try:
        conn.execute(update(OFFSETS).where(false()).values(next_offset=OFFSETS.c.next_offset))
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited or 0)}")


def member_offsets(conn: Connection, group: str, topic: str, members: Iterable[str]
                   ) -> dict[str, dict[int, int]]:
    """Each member's offsets: its own rows; a member without any (from before members had
    their own, or new) has the group's."""
    own, shared = _stored(conn, group, topic, members)
    return {m: dict(own.get(m, shared)) for m in members}


def _stored(conn: Connection, group: str, topic: str, members: Iterable[str]
            ) -> tuple[dict[str, dict[int, int]], dict[int, int]]:
    """The members' own rows (members with none left out), and the group's."""
    names = {member_group(group, m): m for m in members}
    rows = conn.execute(select(OFFSETS.c.group_id, OFFSETS.c.partition, OFFSETS.c.next_offset)
                        .where(and_(OFFSETS.c.group_id.in_([*names, group]),
                                    OFFSETS.c.topic == topic))).all()
    own: dict[str, dict[int, int]] = {}
    shared: dict[int, int] = {}
    for group_id, partition, offset in rows:
        mine = shared if group_id == group else own.setdefault(names[group_id], {})
        mine[int(partition)] = int(offset)
    return own, shared


def member_epochs(conn: Connection, group: str, members: Iterable[str]) -> dict[str, int]:
    names = {member_group(group, m): m for m in members}
    rows = conn.execute(select(EPOCHS.c.group_id, EPOCHS.c.epoch)
                        .where(EPOCHS.c.group_id.in_(list(names)))).all()
    found = {names[g]: int(e) for g, e in rows}
    return {m: found.get(m, 0) for m in names.values()}


def bump_epoch(conn: Connection, group: str, member: str) -> None:
    name = member_group(group, member)
    if not conn.execute(update(EPOCHS).where(EPOCHS.c.group_id == name)
                        .values(epoch=EPOCHS.c.epoch + 1)).rowcount:
        conn.execute(EPOCHS.insert().values(group_id=name, epoch=1))


def set_member_offsets(conn: Connection, group: str, topic: str, member: str,
                       nexts: dict[int, int]) -> None:
    """Replace a member's offsets (a rebuild's swap, under `lock_group`)."""
    name = member_group(group, member)
    conn.execute(OFFSETS.delete().where(and_(OFFSETS.c.group_id == name,
                                             OFFSETS.c.topic == topic)))
    if nexts:
        conn.execute(OFFSETS.insert(), [{"group_id": name, "topic": topic, "partition": p,
                                         "next_offset": o} for p, o in sorted(nexts.items())])


class MemberOffsets(SqlOffsets):
    """The offsets of a group whose handler serves several members.

    `load` (where the group's consumer starts) is, per partition, the least offset of any
    member — absent, from the beginning, when a member has none there. `save` (in the
    handler's transaction) writes the group's offsets as SqlOffsets does, and moves every
    member's forward to them: a member already further on (rebuilt ahead) stays there.
    The handler folds a record into a member only at or after the member's own offset.
    """

    def __init__(self, engine: Engine, members: Sequence[str]) -> None:
        super().__init__(engine)
        METADATA.create_all(engine, tables=[EPOCHS])
        self.members = tuple(members)

    def load(self, group: str, topic: str) -> dict[int, int]:
        with self.engine.connect() as conn:
            stored = member_offsets(conn, group, topic, self.members)
        return least(stored.values())

    def save(self, conn: Connection, group: str, topic: str, nexts: dict[int, int]) -> None:
        lock_group(conn, group)
        own, shared = _stored(conn, group, topic, self.members)
        super().save(conn, group, topic, nexts)
        for member in self.members:
            mine = own.get(member)
            # A member still on the group's offsets gets rows of its own, all partitions.
            current = mine if mine is not None else shared
            wanted = {**current, **{p: max(current.get(p, 0), o) for p, o in nexts.items()}}
            changed = {p: o for p, o in wanted.items() if (mine or {}).get(p) != o}
            if changed:
                write_offsets(conn, member_group(group, member), topic, changed)


def least(offsets: Iterable[dict[int, int]]) -> dict[int, int]:
    """Per partition, the least offset; absent where any of them is absent."""
    listed = list(offsets)
    if not listed:
        return {}
    common = set.intersection(*(set(o) for o in listed))
    return {p: min(o[p] for o in listed) for p in sorted(common)}
