"""A position-ordered reader reads to the end of a topic whose partitions run ahead.

PositionMerge releases records in the store's order, so while one partition lags the
others buffer up to a limit. It used to pause them there, and kafka-python 3.0.12 never
fetched a paused-then-resumed partition again when the paused one had records parsed but
not yet returned: the reader stalled for good (so did the F = 0.1 rebuild of
bench/scale.py). Now the merge refuses what does not fit and seeks back. Here the first
half of the order sits in one partition and the second half in the two others, with a
limit small enough that the two are held at it again and again; read by the rebuild's
reader (partitions assigned) and by the ordered runner (a consumer group).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from consumers.runtime import Delivery, PositionMerge, Subscriber
from replay.rebuild import TopicReader

RECORDS = 30_000
LIMIT = 300  # records one partition may buffer


def produce_lopsided(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for position in range(1, RECORDS + 1):
        partition = 0 if position <= RECORDS // 2 else 1 + position % 2
        value = orjson.dumps({"event_type": "account.agent_appointed", "schema_version": 1,
                              "position": position})
        producer.send(topic, value=value, key=b"k", partition=partition)
    producer.flush()
    producer.close()


def test_the_rebuild_reader_reads_a_lopsided_topic_to_its_end_in_order(
        kafka_bootstrap: str, fresh_topic: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PositionMerge, "BUFFER_LIMIT", LIMIT)
    topic = fresh_topic(partitions=3)
    produce_lopsided(kafka_bootstrap, topic)
    reader = TopicReader(kafka_bootstrap, topic, batch=500)
    positions: list[int] = []
    most_buffered = 0
    deadline = time.monotonic() + 30  # a liveness bound, not a speed figure
    try:
        while not reader.at_end():
            assert time.monotonic() < deadline, (
                f"stalled after {len(positions)} records, buffers "
                f"{ {p: len(b) for p, b in reader.merge.buffers.items()} }, at "
                f"{ {tp.partition: reader.consumer.position(tp) for tp in reader.partitions} }"
                f", ends {reader.consumer.end_offsets(reader.partitions)}")
            positions += [d.record["position"] for d in reader.next_batch(200)]
            most_buffered = max([most_buffered, *map(len, reader.merge.buffers.values())])
    finally:
        reader.close()
    assert reader.merge.refused, "the merge never refused a record: the test tests nothing"
    assert most_buffered <= LIMIT
    assert reader.read == RECORDS  # a refused record is not counted as read
    assert positions == list(range(1, RECORDS + 1))


class Positions:
    """An effect handler that remembers the positions it is handed, in order."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def handle(self, delivery: Delivery) -> None:
        self.seen.append(delivery.record["position"])


def test_the_ordered_runner_reads_a_lopsided_topic_to_its_end_in_order(
        kafka_bootstrap: str, fresh_topic: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PositionMerge, "BUFFER_LIMIT", LIMIT)
    topic = fresh_topic(partitions=3)
    produce_lopsided(kafka_bootstrap, topic)
    handler = Positions()
    subscriber = Subscriber(bootstrap=kafka_bootstrap, topic=topic, group=f"{topic}.ordered",
                            handler=handler, batch=500, ordered=True)
    stop = threading.Event()
    deadline = threading.Timer(60, stop.set)  # a liveness bound, not a speed figure
    deadline.start()
    try:
        subscriber.run(stop, until_caught_up=True)
    finally:
        deadline.cancel()
        subscriber.close()
    assert not stop.is_set(), f"stalled after {len(handler.seen)} records"
    assert subscriber.merge is not None and subscriber.merge.refused
    assert handler.seen == list(range(1, RECORDS + 1))
