"""The publisher against a real broker: every event on the topic once, in order."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers.publisher import Publisher, last_committed_position
from consumers.topics import topic_size_bytes
from domain.ingest import ingest
from domain.ledger import Ledger
from domain.settings import Compression
from simulator import simulate
from tests.kafka_reading import decoded, read_topic
from tests.test_ledger_properties import all_records, counting_clock


@pytest.fixture(scope="module")
def simulated_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store holding a simulated history of at least 10,000 events."""
    folder = tmp_path_factory.mktemp("store")
    requests = folder / "requests.jsonl"
    simulate(establishments=300, months=3, seed=11, out=requests, leaks=1)
    url = f"sqlite:///{folder}/events.sqlite"
    with requests.open("rb") as lines:
        report = ingest(Ledger(url, clock=counting_clock()), lines)
    assert report.events >= 10_000, report.events
    return url


def test_every_event_once_in_establishment_order_and_equal_to_the_store(
        simulated_store: str, kafka_bootstrap: str, fresh_topic: Any) -> None:
    topic = fresh_topic(partitions=6)
    ledger = Ledger(simulated_store)
    publisher = Publisher(ledger, kafka_bootstrap, topic, page=1000)
    report = publisher.publish_pending()
    publisher.close()
    stored = all_records(ledger)
    assert report.published == len(stored) >= 10_000
    on_topic = decoded(kafka_bootstrap, topic)
    assert on_topic == stored  # each once, nothing else, field for field
    for partition in read_topic(kafka_bootstrap, topic).values():
        last: dict[bytes, int] = {}
        for message in partition:
            position = orjson.loads(message.value)["position"]
            assert position > last.get(message.key, 0), "an establishment's order broke"
            last[message.key] = position
    keys = {m.key for part in read_topic(kafka_bootstrap, topic).values() for m in part}
    assert all(k for k in keys)


def test_a_restarted_publisher_resumes_after_what_kafka_committed(
        simulated_store: str, kafka_bootstrap: str, fresh_topic: Any) -> None:
    topic = fresh_topic(partitions=3)
    ledger = Ledger(simulated_store)
    first = Publisher(ledger, kafka_bootstrap, topic, page=500)
    first._publish_page(ledger.recorder.select_notifications(start=1, limit=1234))
    first.close()
    assert last_committed_position(kafka_bootstrap, topic) == 1234
    second = Publisher(ledger, kafka_bootstrap, topic, page=500)
    assert second.position == 1234
    report = second.publish_pending()
    second.close()
    assert report.resumed_after == 1234
    assert [r["position"] for r in decoded(kafka_bootstrap, topic)] == \
        [r["position"] for r in all_records(ledger)]


def _publisher_process(store: str, bootstrap: str, topic: str,
                       log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SIJIL_DATABASE_URL": store, "SIJIL_KAFKA_BOOTSTRAP": bootstrap}
    return subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "publish", "--topic", topic, "--page", "40"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def test_publisher_killed_at_random_moments_leaves_each_event_exactly_once(
        simulated_store: str, kafka_bootstrap: str, fresh_topic: Any, tmp_path: Path) -> None:
    topic = fresh_topic(partitions=4)
    rng = random.Random(20261123)
    kills = 0
    for _ in range(5):
        process = _publisher_process(simulated_store, kafka_bootstrap, topic,
                                     tmp_path / "publisher.log")
        time.sleep(rng.uniform(1.5, 2.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    final = _publisher_process(simulated_store, kafka_bootstrap, topic,
                               tmp_path / "publisher.log")
    assert final.wait(timeout=180) == 0, (tmp_path / "publisher.log").read_text()[-2000:]
    assert kills >= 3, "the publisher finished before it could be killed: make it slower"
    stored = all_records(Ledger(simulated_store))
    positions = [r["position"] for r in decoded(kafka_bootstrap, topic)]
    assert positions == [r["position"] for r in stored]  # all, once, in order


def test_round_trip_changes_nothing_per_stream(simulated_store: str, kafka_bootstrap: str,
                                               fresh_topic: Any) -> None:
    topic = fresh_topic(partitions=2)
    ledger = Ledger(simulated_store)
    publisher = Publisher(ledger, kafka_bootstrap, topic)
    publisher.publish_pending()
    publisher.close()
    by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in decoded(kafka_bootstrap, topic):
        by_stream[record["stream"]].append(record)
    from domain.integrity import verify_chain

    for stream, records in by_stream.items():
        chain = [(r["stream_version"], r) for r in records]
        assert verify_chain(stream, chain) == [], f"stream {stream} breaks on Kafka"


@pytest.mark.parametrize("codec", ["zstd", "none"])
def test_the_topic_holds_compressed_batches_unless_told_otherwise(
        simulated_store: str, kafka_bootstrap: str, fresh_topic: Any, codec: Compression) -> None:
    """The brokers' own size of the topic against the bytes of its records: zstd (the
    default) keeps the topic well under them; none keeps every byte, and more."""
    topic = fresh_topic(partitions=3)
    publisher = Publisher(Ledger(simulated_store), kafka_bootstrap, topic, page=2000,
                          compression=codec)
    publisher.publish_pending()
    publisher.close()
    values = sum(len(m.value) for part in read_topic(kafka_bootstrap, topic).values()
                 for m in part)
    on_disk = topic_size_bytes(kafka_bootstrap, topic)
    if codec == "zstd":
        assert on_disk < values / 3, (on_disk, values)
    else:
        assert on_disk > values, (on_disk, values)
