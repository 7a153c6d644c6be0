"""Reading a topic back whole in tests: every committed record, decoded, by partition."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, TopicPartition

from consumers.codec import decode


def read_topic(bootstrap: str, topic: str) -> dict[int, list[Any]]:
    """All committed records of the topic, per partition, in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        out: dict[int, list[Any]] = {tp.partition: [] for tp in partitions}
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                out[tp.partition].extend(messages)
        return out
    finally:
        consumer.close()


def decoded(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of the topic decoded, in store position order."""
    records = [decode(m.value, m.headers) for part in read_topic(bootstrap, topic).values()
               for m in part]
    return sorted(records, key=lambda r: r["position"])
