"""The local Kafka broker and Sijil's topics, through kafka-python as Sijil uses it.

Round trips with an idempotent producer (keys, headers, per-partition order), a
transactional producer whose aborted transaction read_committed never sees, and the
topics' retention (forever) as the broker reports it. The first tests need no broker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from consumers.broker import LocalBroker
from consumers.topics import TopicSpec, admin_client, ensure_topics, topic_specs
from domain.settings import Settings

RECORDS = 1_000
ESTABLISHMENTS = 37
EVENT_NAMESPACE = uuid.UUID("6f1c2a52-4a0e-4d3e-9d7e-2c1b5a0f9e11")


# without a broker ------------------------------------------------------------------
def test_server_properties_describe_a_single_dev_node(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=29092, controller_port=29093, lib=tmp_path / "lib")
    props = dict(
        line.split("=", 1)
        for line in broker.server_properties().splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:29093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kafka" / "data")
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.retention.ms"] == "-1"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr"):
        assert props[key] == "1"


def test_a_broker_never_started_is_not_running(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=29092, controller_port=29093, lib=tmp_path / "lib")
    status = broker.status()
    assert (status.running, status.pid, status.healthy, status.formatted) == (
        False, None, False, False,
    )
    assert broker.stop() is None


def test_a_stale_pid_file_is_ignored_and_removed(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=29092, controller_port=29093, lib=tmp_path / "lib")
    broker.root.mkdir(parents=True)
    broker.pid_file.write_text("1\n")  # init: alive, but not our broker
    assert broker.pid() is None
    assert not broker.pid_file.exists()


def test_topic_specs_keep_everything_forever() -> None:
    specs = {s.name: s for s in topic_specs(Settings(events_partitions=6))}
    assert set(specs) == {
        "sijil.events.v1", "sijil.events.v1.dlq", "sijil.alerts.nitaqat.v1",
        "sijil.alerts.fraud.v1", "sijil.digests.v1",
    }
    assert specs["sijil.events.v1"].partitions == 6
    for spec in specs.values():
        assert spec.configs["retention.ms"] == "-1"
        assert spec.configs["retention.bytes"] == "-1"
        assert spec.configs["cleanup.policy"] == "delete"


# with the session's broker ---------------------------------------------------------
def _consume_to_end(
    bootstrap: str, topic: str, partitions: int, isolation_level: str, timeout: float = 30.0
) -> list[Any]:
    """Every record of every partition, from offset 0 to the current end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        client_id=f"sijil-test-{isolation_level}",
    )
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            assert time.monotonic() < deadline, f"not at the end after {timeout} s: {ends}"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _headers(i: int) -> list[tuple[str, bytes]]:
    return [
        ("event_type", b"PermitRenewed"),
        ("schema_version", b"1"),
        ("event_id", str(uuid.uuid5(EVENT_NAMESPACE, str(i))).encode()),
        ("content_type", b"application/json"),
    ]


def test_the_fixture_broker_is_up_and_up_is_idempotent(kafka_broker: LocalBroker) -> None:
    status = kafka_broker.status()
    assert status.running and status.healthy
    assert kafka_broker.up() is False  # already running: nothing done
    assert kafka_broker.pid() == status.pid


def test_idempotent_producer_round_trip_keeps_keys_headers_and_order(
    kafka_bootstrap: str, fresh_topic: Callable[..., str]
) -> None:
    partitions = 3
    topic = fresh_topic(partitions=partitions)
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        client_id="sijil-test-idempotent",
    )
    sent = []
    try:
        futures = []
        for i in range(RECORDS):
            key = f"1-{100000 + i % ESTABLISHMENTS}".encode()
            value = json.dumps({"seq": i, "establishment_id": key.decode()}).encode()
            futures.append(producer.send(topic, key=key, value=value, headers=_headers(i)))
            sent.append((key, value, _headers(i)))
        producer.flush(timeout=30)
        metadata = [future.get(timeout=30) for future in futures]
    finally:
        producer.close()

    # what the producer was told: per partition, offsets in send order, no gaps
    expected: dict[int, list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]]] = defaultdict(list)
    partition_of_key: dict[bytes, int] = {}
    for (key, value, headers), meta in zip(sent, metadata, strict=True):
        expected[meta.partition].append((meta.offset, key, value, headers))
        assert partition_of_key.setdefault(key, meta.partition) == meta.partition
    for rows in expected.values():
        assert [row[0] for row in rows] == list(range(len(rows)))

    records = _consume_to_end(kafka_bootstrap, topic, partitions, "read_committed")
    assert len(records) == RECORDS
    assert {r.key for r in records} == {key for key, _, _ in sent}
    consumed: dict[int, list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]]] = defaultdict(list)
    for r in records:
        consumed[r.partition].append((r.offset, r.key, r.value, list(r.headers)))
    assert consumed == expected  # same records, same headers, same order in every partition


def test_aborted_transaction_is_invisible_to_read_committed(
    kafka_bootstrap: str, fresh_topic: Callable[..., str]
) -> None:
    topic = fresh_topic(partitions=2)
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"sijil-test-{uuid.uuid4().hex}",
        client_id="sijil-test-transactional",
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for i in range(10):
            producer.send(topic, key=f"1-{i}".encode(), value=b"aborted", headers=_headers(i))
        producer.flush(timeout=30)  # written to the log, then aborted
        producer.abort_transaction()
        producer.begin_transaction()
        for i in range(5):
            producer.send(topic, key=f"1-{i}".encode(), value=b"committed", headers=_headers(i))
        producer.commit_transaction()
    finally:
        producer.close()

    committed = _consume_to_end(kafka_bootstrap, topic, 2, "read_committed")
    assert sorted(r.value for r in committed) == [b"committed"] * 5
    everything = _consume_to_end(kafka_bootstrap, topic, 2, "read_uncommitted")
    assert sorted(r.value for r in everything) == [b"aborted"] * 10 + [b"committed"] * 5


def test_ensure_topics_created_topics_that_keep_everything(kafka_bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap)
    specs = topic_specs(settings)
    admin = admin_client(kafka_bootstrap)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, s.name, None) for s in specs],
            config_filter="all",
        )["topic"]
        layout = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(
            [s.name for s in specs])}
    finally:
        admin.close()
    for spec in specs:
        configs = described[spec.name]
        assert configs["retention.ms"]["value"] == "-1", spec.name
        assert configs["retention.bytes"]["value"] == "-1", spec.name
        assert configs["cleanup.policy"]["value"] == "delete", spec.name
        assert configs["min.insync.replicas"]["value"] == str(settings.min_insync_replicas)
        assert layout[spec.name] == spec.partitions
    assert layout[settings.events_topic] == settings.events_partitions


def test_ensure_topics_leaves_existing_topics_alone_and_reports_drift(
    kafka_bootstrap: str, fresh_topic: Callable[..., str]
) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap)
    again = ensure_topics(kafka_bootstrap, settings)
    assert [(s.created, s.drift) for s in again] == [(False, ())] * len(again)

    topic = fresh_topic(partitions=2, configs={"retention.ms": "3600000"})
    spec = TopicSpec(topic, 4, 1, {"retention.ms": "-1", "cleanup.policy": "delete"})
    (state,) = ensure_topics(kafka_bootstrap, settings, specs=[spec])
    assert not state.created
    assert state.partitions == 2
    assert state.configs["retention.ms"] == "3600000"  # reported, not changed
    assert any("partitions 2, expected 4" in d for d in state.drift)
    assert any("retention.ms=3600000, expected -1" in d for d in state.drift)
