"""Looking at a topic whole: every committed record from offset 0 to the end, for
people (counts, samples), auditors (a copy of the history) and tests alike."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
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
        ends = settled_end_offsets(consumer, bootstrap, partitions)
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                yield tp.partition, messages
    finally:
        consumer.close()


def settled_end_offsets(consumer: KafkaConsumer, bootstrap: str,
                        partitions: Sequence[TopicPartition], wait_s: float = 10.0
                        ) -> dict[TopicPartition, int]:
    """The read_committed ends once no transaction on the partitions is left undecided.

    A producer's commit returns once the transaction coordinator has logged it; the
    commit markers reach the partitions after that (KIP-98, "the coordinator then writes
    the markers"), so for a moment the last stable offset stops short of a transaction
    whose publish has returned, and a reader that stops there misses the topic's tail.
    Waiting until the last stable offset meets the high watermark closes that gap; a
    transaction still open after `wait_s` (a live publisher) is left to the next read.
    """
    high = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_uncommitted",
                         enable_auto_commit=False, group_id=None)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            stable = consumer.end_offsets(list(partitions))
            if stable == high.end_offsets(list(partitions)) or time.monotonic() > deadline:
                return dict(stable)
            time.sleep(0.05)
    finally:
        high.close()


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
