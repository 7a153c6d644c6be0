"""Looking at a topic whole: every committed record from offset 0 to the end, for
people (counts, samples), auditors (a copy of the history) and tests alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from consumers.codec import decode


def committed_messages(bootstrap: str, topic: str) -> Iterator[tuple[int, list[Any]]]:
    """(partition, messages) batches until every partition's committed end is read."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                yield tp.partition, messages
    finally:
        consumer.close()


def topic_contents(bootstrap: str, topic: str, samples: int = 5
                   ) -> tuple[dict[int, tuple[int, int]], list[dict[str, Any]]]:
    """{partition: (records, distinct keys)} and a few decoded records of different
    event types, read_committed."""
    counts: dict[int, int] = {}
    keys: dict[int, set[bytes]] = {}
    found: dict[bytes, dict[str, Any]] = {}  # the first record of each event type
    for partition, messages in committed_messages(bootstrap, topic):
        counts[partition] = counts.get(partition, 0) + len(messages)
        keys.setdefault(partition, set()).update(m.key for m in messages)
        for m in messages:
            kind = dict(m.headers).get("event_type", b"")
            if kind not in found and len(found) < 4 * samples:
                found[kind] = decode(m.value, m.headers)
    chosen = sorted(found.values(), key=lambda r: r["position"])[-samples:]
    return {p: (counts[p], len(keys[p])) for p in counts}, chosen
