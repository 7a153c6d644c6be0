"""Looking at a topic whole: counts per partition and a few decoded events, for people."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, TopicPartition

from consumers.codec import decode


def topic_contents(bootstrap: str, topic: str, samples: int = 5
                   ) -> tuple[dict[int, tuple[int, int]], list[dict[str, Any]]]:
    """{partition: (records, distinct keys)} and a few decoded records of different
    event types, read_committed."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        counts = {tp.partition: 0 for tp in partitions}
        keys: dict[int, set[bytes]] = {tp.partition: set() for tp in partitions}
        found: dict[bytes, dict[str, Any]] = {}  # the first record of each event type
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                counts[tp.partition] += len(messages)
                keys[tp.partition].update(m.key for m in messages)
                for m in messages:
                    kind = dict(m.headers).get("event_type", b"")
                    if kind not in found and len(found) < 4 * samples:
                        found[kind] = decode(m.value, m.headers)
        chosen = sorted(found.values(), key=lambda r: r["position"])[-samples:]
        return {p: (counts[p], len(keys[p])) for p in counts}, chosen
    finally:
        consumer.close()
