"""Consumer offsets kept beside a handler's SQL writes, in the same database.

Kafka's own committed offsets are written too, for lag reports; these are the ones a
SQL handler resumes from, because only they commit atomically with its effects.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    select,
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


class SqlOffsets:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        METADATA.create_all(engine, tables=[OFFSETS])

    def load(self, group: str, topic: str) -> dict[int, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(OFFSETS.c.partition, OFFSETS.c.next_offset).where(
                and_(OFFSETS.c.group_id == group, OFFSETS.c.topic == topic))).all()
        return {int(p): int(o) for p, o in rows}

    def save(self, conn: Connection, group: str, topic: str, nexts: dict[int, int]) -> None:
        for partition, offset in nexts.items():
            where = and_(OFFSETS.c.group_id == group, OFFSETS.c.topic == topic,
                         OFFSETS.c.partition == partition)
            if conn.execute(update(OFFSETS).where(where).values(next_offset=offset)).rowcount:
                continue
            conn.execute(OFFSETS.insert().values(group_id=group, topic=topic,
                                                 partition=partition, next_offset=offset))
