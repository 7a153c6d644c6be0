"""A whole-topic read right after a transaction commits sees all of it.

The commit markers of a Kafka transaction reach the partitions after the producer's
commit has returned, so a reader that stops at the last stable offset it sees at once
can miss the tail (CI failed so on a round trip). consumers/inspection.py waits for the
markers; this test commits and asks for the ends at once on a consumer already
connected (a new one takes long enough to hide the gap), many times, on a real broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.inspection import settled_end_offsets

ROUNDS = 25
PER_ROUND = 9  # keys spread over every partition, so each round writes three markers


def test_reading_to_the_settled_ends_right_after_a_commit_finds_all_of_it(
        kafka_bootstrap: str, fresh_topic: Callable[..., str]) -> None:
    topic = fresh_topic(partitions=3)
    partitions = [TopicPartition(topic, p) for p in range(3)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap,
                             transactional_id=f"sijil-test-{uuid.uuid4().hex}")
    reader = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None,
                           isolation_level="read_committed", enable_auto_commit=False)
    reader.assign(partitions)
    producer.init_transactions()
    try:
        for round_ in range(1, ROUNDS + 1):
            producer.begin_transaction()
            for k in range(PER_ROUND):
                producer.send(topic, key=f"{round_}-{k}".encode(), value=b"{}")
            producer.commit_transaction()

            ends = settled_end_offsets(reader, kafka_bootstrap, partitions)

            assert _records_before(reader, ends) == round_ * PER_ROUND, f"round {round_}"
    finally:
        producer.close()
        reader.close()


def _records_before(reader: KafkaConsumer, ends: dict[TopicPartition, int]) -> int:
    """Committed records from the beginning up to `ends`, read on the same consumer."""
    reader.seek_to_beginning()
    read = 0
    while any(reader.position(tp) < end for tp, end in ends.items()):
        read += sum(len(m) for m in reader.poll(timeout_ms=500).values())
    return read
