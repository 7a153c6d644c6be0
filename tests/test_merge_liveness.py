"""A position-ordered reader reads to the end of a topic whose partitions it must pause.

PositionMerge releases records in the store's order, so while one partition lags the
others buffer and get paused. With kafka-python's incremental fetch sessions on, pausing
and resuming once left a partition that no later fetch served: the F = 0.1 rebuild of
bench/scale.py stalled for good. Here the first half of the order sits in one partition
and the second half in the two others, with a pause threshold small enough that the two
are paused and resumed again and again.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from consumers.runtime import PositionMerge
from replay.rebuild import TopicReader

RECORDS = 30_000


def produce_lopsided(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for position in range(1, RECORDS + 1):
        partition = 0 if position <= RECORDS // 2 else 1 + position % 2
        value = orjson.dumps({"event_type": "account.agent_appointed", "schema_version": 1,
                              "position": position})
        producer.send(topic, value=value, key=b"k", partition=partition)
    producer.flush()
    producer.close()


@pytest.mark.xfail(strict=False, reason=(
    "known, open: with a pause threshold this small the reader still stalls (positions "
    "stop short of the ends with no partition paused) even without incremental fetch "
    "sessions; the F = 0.1 stall those caused is fixed. Next: kafka-python's fetcher "
    "after pause/resume (parked completed fetches), or a merge that never pauses."))
def test_the_rebuild_reader_reads_a_lopsided_topic_to_its_end_in_order(
        kafka_bootstrap: str, fresh_topic: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PositionMerge, "PAUSE_AT", 300)
    topic = fresh_topic(partitions=3)
    produce_lopsided(kafka_bootstrap, topic)
    reader = TopicReader(kafka_bootstrap, topic, batch=500)  # sessions off (the fix)
    positions: list[int] = []
    paused_seen = False
    deadline = time.monotonic() + 30  # a liveness bound, not a speed figure
    try:
        while not reader.at_end():
            assert time.monotonic() < deadline, (
                f"stalled after {len(positions)} records, buffers "
                f"{ {p: len(b) for p, b in reader.merge.buffers.items()} }, paused "
                f"{reader.consumer.paused()}, at "
                f"{ {tp.partition: reader.consumer.position(tp) for tp in reader.partitions} }"
                f", ends {reader.consumer.end_offsets(reader.partitions)}")
            positions += [d.record["position"] for d in reader.next_batch(200)]
            paused_seen = paused_seen or bool(reader.consumer.paused())
    finally:
        reader.close()
    assert paused_seen, "the merge never paused a partition: the test tests nothing"
    assert positions == list(range(1, RECORDS + 1))
