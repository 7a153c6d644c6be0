"""The alerts relay: new alert rows from a projection's outbox onto an alerts topic.

An alert is written in the projection runner's transaction (exactly once, with the
event that caused it); relaying is at least once — sent, flushed, then marked — and
each record is keyed and headed by its stable alert id, so a reader deduplicates.
"""

from __future__ import annotations

from typing import Any

import orjson
from kafka import KafkaProducer
from sqlalchemy import Engine, Table, select, update


def relay_alerts(engine: Engine, table: Table, bootstrap: str, topic: str,
                 page: int = 1000, key: str = "establishment_id") -> int:
    """Relay unpublished rows, keyed by the `key` column (an establishment's Nitaqat
    alerts; an account's fraud alerts, many of which concern no establishment)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    sent = 0
    try:
        while rows := _unpublished(engine, table, page):
            for row in rows:
                body = {str(k): v for k, v in row.items() if k != "published"}
                producer.send(topic, key=str(row[key]).encode(),
                              value=orjson.dumps(body),
                              headers=[("alert_id", str(row["alert_id"]).encode()),
                                       ("kind", str(row["kind"]).encode())])
            producer.flush()
            with engine.begin() as conn:
                ids = [r["alert_id"] for r in rows]
                conn.execute(update(table).where(table.c.alert_id.in_(ids))
                             .values(published=True))
            sent += len(rows)
    finally:
        producer.close()
    return sent


def _unpublished(engine: Engine, table: Table, page: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(table).where(table.c.published.is_(False))
            .order_by(table.c.position).limit(page)).mappings()]
