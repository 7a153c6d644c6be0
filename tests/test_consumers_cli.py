"""`sijil consumers status` against the test broker: a group run partway shows, per
partition, its committed offset, the end offset and lag = end - committed."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from typer.testing import CliRunner

from consumers.publisher import Publisher
from consumers.runtime import Delivery, Subscriber
from consumers.topics import admin_client, dead_letter_topic
from domain.ingest import ingest
from domain.ledger import Ledger
from portal.consumers_cli import consumers_app
from simulator import simulate
from tests.test_ledger_properties import counting_clock

RUNNER = CliRunner()
PARTITIONS = 3


class StopAfter:
    """An effect handler that asks its subscriber to stop after `limit` events."""

    def __init__(self, limit: int) -> None:
        self.limit, self.seen, self.stop = limit, 0, threading.Event()

    def handle(self, delivery: Delivery) -> None:
        self.seen += 1
        if self.seen >= self.limit:
            self.stop.set()


@pytest.fixture
def published(tmp_path: Path, kafka_bootstrap: str, fresh_topic: Callable[..., str]
              ) -> tuple[str, int]:
    simulate(establishments=15, months=1, seed=31, out=tmp_path / "requests.jsonl")
    url = f"sqlite:///{tmp_path}/events.sqlite"
    with (tmp_path / "requests.jsonl").open("rb") as lines:
        ingest(Ledger(url, clock=counting_clock()), lines)
    topic = fresh_topic(partitions=PARTITIONS)
    admin = admin_client(kafka_bootstrap)
    try:
        admin.create_topics({dead_letter_topic(topic): {"num_partitions": 1,
                                                        "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()
    publisher = Publisher(Ledger(url), kafka_bootstrap, topic, page=100)
    total = publisher.publish_pending().published
    publisher.close()
    return topic, total


def status(bootstrap: str, topic: str, *args: str) -> str:
    result = RUNNER.invoke(consumers_app, ["status", *args],
                           env={"SIJIL_KAFKA_BOOTSTRAP": bootstrap,
                                "SIJIL_EVENTS_TOPIC": topic})
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_status_reports_each_partitions_lag_of_a_group_run_partway(
        kafka_bootstrap: str, published: tuple[str, int]) -> None:
    topic, total = published
    group = f"t-status-{uuid.uuid4().hex[:8]}"
    handler = StopAfter(total // 3)
    subscriber = Subscriber(bootstrap=kafka_bootstrap, topic=topic, group=group,
                            handler=handler, batch=40)
    subscriber.run(handler.stop)
    subscriber.close()

    report = json.loads(status(kafka_bootstrap, topic, "--json"))

    parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    reader = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group,
                           enable_auto_commit=False)
    try:
        committed = {tp.partition: reader.committed(tp) for tp in parts}
        ends = {tp.partition: end for tp, end in reader.end_offsets(parts).items()}
    finally:
        reader.close()
    assert report["topic"] == topic
    assert [g["group"] for g in report["groups"]] == [group]  # groups of other topics: no
    (found,) = report["groups"]
    assert [p["partition"] for p in found["partitions"]] == list(range(PARTITIONS))
    for row in found["partitions"]:
        mark = committed[row["partition"]]
        assert row["committed"] == mark
        assert row["end"] == ends[row["partition"]]
        assert row["lag"] == row["end"] - (mark or 0)
    assert found["lag"] == sum(row["lag"] for row in found["partitions"])
    assert 0 < found["lag"] < sum(ends.values())
    assert sum(mark or 0 for mark in committed.values()) >= total // 3

    table = status(kafka_bootstrap, topic)
    assert group in table and f"{found['lag']:,}" in table


def test_a_caught_up_group_lags_only_by_the_commit_markers(
        kafka_bootstrap: str, published: tuple[str, int]) -> None:
    """docs/contract.md: the marker after each partition's last record takes an offset."""
    topic, total = published
    group = f"t-caught-up-{uuid.uuid4().hex[:8]}"
    handler = StopAfter(total + 1)
    subscriber = Subscriber(bootstrap=kafka_bootstrap, topic=topic, group=group,
                            handler=handler)
    subscriber.run(until_caught_up=True)
    subscriber.close()
    assert handler.seen == total

    (found,) = json.loads(status(kafka_bootstrap, topic, "--json"))["groups"]

    assert [row["lag"] for row in found["partitions"]] == [1] * PARTITIONS
    assert all(row["committed"] == row["end"] - 1 for row in found["partitions"])


def test_status_says_so_when_no_group_reads_the_topic(
        kafka_bootstrap: str, fresh_topic: Callable[..., str]) -> None:
    topic = fresh_topic(partitions=1)
    assert json.loads(status(kafka_bootstrap, topic, "--json"))["groups"] == []
    assert "no consumer group" in status(kafka_bootstrap, topic)
