"""The subscriber runtime against a real broker: dead letters, exactly-once SQL effects
across SIGKILL, a clean stop on SIGTERM."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer
from sqlalchemy import create_engine, text

from consumers.codec import encode
from consumers.publisher import Publisher
from consumers.runtime import Delivery, Subscriber
from consumers.topics import dead_letter_topic
from domain.ingest import ingest
from domain.ledger import Ledger
from simulator import simulate
from tests.kafka_reading import read_topic
from tests.test_ledger_properties import all_records, counting_clock

SCRIPT = Path(__file__).with_name("subscriber_process.py")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("runtime")
    simulate(establishments=60, months=1, seed=5, out=folder / "r.jsonl")
    url = f"sqlite:///{folder}/events.sqlite"
    with (folder / "r.jsonl").open("rb") as lines:
        ingest(Ledger(url, clock=counting_clock()), lines)
    return url


def _topic_with_dlq(fresh_topic: Any, kafka_bootstrap: str, partitions: int) -> str:
    from consumers.topics import admin_client

    topic = fresh_topic(partitions=partitions)
    admin = admin_client(kafka_bootstrap)
    try:
        admin.create_topics({dead_letter_topic(topic): {"num_partitions": 1,
                                                        "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()
    return topic


class Recorder:
    """An effect handler that refuses one event id, and remembers the rest."""

    def __init__(self, failing: str) -> None:
        self.failing, self.seen = failing, []  # type: ignore[var-annotated]

    def handle(self, delivery: Delivery) -> None:
        if delivery.record["event_id"] == self.failing:
            raise RuntimeError("handler cannot take this one")
        self.seen.append(delivery.record["position"])


def test_poison_records_go_to_the_dead_letter_topic_and_the_rest_go_on(
        store: str, kafka_bootstrap: str, fresh_topic: Any) -> None:
    topic = _topic_with_dlq(fresh_topic, kafka_bootstrap, 1)
    records = all_records(Ledger(store))[:50]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    unknown = dict(records[1], event_type="worker.teleported")
    poison = [(b"k", b"not json at all", []), encode(unknown)]
    for i, record in enumerate(records):
        if i == 10:
            for key, value, headers in poison:
                producer.send(topic, key=key, value=value, headers=headers)
        key, value, headers = encode(record)
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    failing = records[30]["event_id"]
    handler = Recorder(failing)
    subscriber = Subscriber(bootstrap=kafka_bootstrap, topic=topic, group="t-poison",
                            handler=handler, backoff=0.001)
    subscriber.run(until_caught_up=True)
    subscriber.close()
    assert handler.seen == [r["position"] for r in records if r["event_id"] != failing]
    letters = [m for part in read_topic(kafka_bootstrap, dead_letter_topic(topic)).values()
               for m in part]
    reasons = [dict(m.headers)["dlq.error"].decode() for m in letters]
    assert len(letters) == 3
    assert reasons[0].startswith("value: not JSON")
    assert "unknown event type 'worker.teleported'" in reasons[1]
    assert "RuntimeError: handler cannot take this one" in reasons[2]
    assert orjson.loads(letters[2].value)["event_id"] == failing
    assert all(dict(m.headers)["dlq.group"] == b"t-poison" for m in letters)


def _published(store: str, kafka_bootstrap: str, topic: str) -> int:
    publisher = Publisher(Ledger(store), kafka_bootstrap, topic)
    count = publisher.publish_pending().published
    publisher.close()
    return count


def _spawn(url: str, bootstrap: str, topic: str, group: str,
           *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(SCRIPT), url, bootstrap, topic, group, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_a_consumer_killed_mid_batch_has_exactly_once_sql_effects(
        store: str, kafka_bootstrap: str, fresh_topic: Any, tmp_path: Path) -> None:
    topic = _topic_with_dlq(fresh_topic, kafka_bootstrap, 3)
    total = _published(store, kafka_bootstrap, topic)
    url = f"sqlite:///{tmp_path}/effects.sqlite"
    rng, kills = random.Random(7), 0
    for _ in range(4):
        process = _spawn(url, kafka_bootstrap, topic, "t-kill")
        time.sleep(rng.uniform(2.0, 3.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    final = _spawn(url, kafka_bootstrap, topic, "t-kill", "--until-caught-up")
    output = final.communicate(timeout=300)[0].decode()
    assert final.returncode == 0, output[-2000:]
    assert kills >= 2
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, COUNT(*) FROM effects GROUP BY event_id "
                                 "HAVING COUNT(*) > 1")).all()
        handled = conn.execute(text("SELECT COUNT(*) FROM effects")).scalar_one()
    assert rows == [], f"{len(rows)} events handled twice"
    assert handled == total


def test_sigterm_stops_cleanly_and_keeps_the_offsets(store: str, kafka_bootstrap: str,
                                                     fresh_topic: Any, tmp_path: Path) -> None:
    topic = _topic_with_dlq(fresh_topic, kafka_bootstrap, 2)
    total = _published(store, kafka_bootstrap, topic)
    url = f"sqlite:///{tmp_path}/effects.sqlite"
    process = _spawn(url, kafka_bootstrap, topic, "t-term")
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    time.sleep(3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    engine = create_engine(url)
    with engine.connect() as conn:
        handled = conn.execute(text("SELECT COUNT(*) FROM effects")).scalar_one()
        stored = conn.execute(text("SELECT SUM(next_offset) FROM consumer_offsets")).scalar_one()
    assert 0 < handled <= total
    assert stored == handled  # offsets and effects moved together

