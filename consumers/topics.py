"""Sijil's Kafka topics, created with explicit configurations.

- ``<events>`` (``sijil.events.v1``): every recorded event, keyed by establishment
  id; ``events_partitions`` partitions (6).
- ``<events>.dlq``: records a consumer could not handle, for every consumer group;
  as many partitions as the events topic.
- ``sijil.alerts.nitaqat.v1``: Nitaqat band alerts and pre-alerts; 1 partition.
- ``sijil.alerts.fraud.v1``: the fraud detector's alerts; 1 partition.
- ``sijil.digests.v1``: integrity digests of the event streams; 1 partition.

All of them keep everything (``retention.ms=-1``, ``retention.bytes=-1``,
``cleanup.policy=delete``): Kafka is the system of record for readers, and every
projection must be rebuildable from offset 0. Replication factor and
``min.insync.replicas`` come from the settings (1 and 1 on the local broker; a
production cluster sets 3 and 2).

One dead-letter topic serves every consumer group: a dead letter carries the group,
the source topic, partition and offset, and the error in its headers, so one topic is
enough and a new consumer group needs no new topic. It has as many partitions as the
events topic and keeps the establishment id as key, so a group can replay its dead
letters for one establishment in order.

``ensure_topics`` creates what is missing and leaves existing topics alone: a
difference from the expected partitions or configs is reported as drift, never
"fixed" (more partitions would move keys to other partitions and break the
per-establishment order).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domain.settings import Settings

ALERTS_NITAQAT_TOPIC = "sijil.alerts.nitaqat.v1"
ALERTS_FRAUD_TOPIC = "sijil.alerts.fraud.v1"
DIGESTS_TOPIC = "sijil.digests.v1"
DEAD_LETTER_SUFFIX = ".dlq"

KEEP_FOREVER: Mapping[str, str] = {
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
}


def dead_letter_topic(events_topic: str) -> str:
    """The one dead-letter topic of an events topic (shared by all consumer groups)."""
    return f"{events_topic}{DEAD_LETTER_SUFFIX}"


@dataclass(frozen=True)
class TopicSpec:
    """What a topic should look like."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    purpose: str = ""


@dataclass(frozen=True)
class TopicState:
    """A topic as the cluster has it, after ``ensure_topics``."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]  # the spec's keys, with the cluster's values
    created: bool  # created by this call (False: it existed already)
    purpose: str = ""
    drift: tuple[str, ...] = field(default=())  # differences from the spec, in words


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics Sijil needs, from the settings."""
    rf = settings.events_replication_factor
    configs = {**KEEP_FOREVER, "min.insync.replicas": str(settings.min_insync_replicas)}
    events = settings.events_topic
    return [
        TopicSpec(events, settings.events_partitions, rf, configs, "every recorded event"),
        TopicSpec(
            dead_letter_topic(events),
            settings.events_partitions,
            rf,
            configs,
            "dead letters of every consumer group",
        ),
        TopicSpec(ALERTS_NITAQAT_TOPIC, 1, rf, configs, "Nitaqat alerts"),
        TopicSpec(ALERTS_FRAUD_TOPIC, 1, rf, configs, "fraud alerts"),
        TopicSpec(DIGESTS_TOPIC, 1, rf, configs, "integrity digests"),
    ]


def admin_client(bootstrap: str, **config: Any) -> Any:
    """A kafka-python admin client (the caller closes it)."""
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=config.pop("client_id", "sijil-admin"), **config
    )


def _partition_layout(admin: Any, names: list[str]) -> dict[str, tuple[int, int]]:
    """{topic: (partitions, replication factor)} for the topics that exist."""
    layout: dict[str, tuple[int, int]] = {}
    for topic in admin.describe_topics(names):
        if topic.get("error_code", 0) != 0:
            continue
        partitions = topic.get("partitions") or []
        replicas = max((len(p.get("replica_nodes", [])) for p in partitions), default=0)
        layout[topic["name"]] = (len(partitions), replicas)
    return layout


def _topic_configs(
    admin: Any, names: Iterable[str], keys: Iterable[str]
) -> dict[str, dict[str, str]]:
    from kafka.admin import ConfigResource, ConfigResourceType

    resources = [ConfigResource(ConfigResourceType.TOPIC, name, list(keys)) for name in names]
    if not resources:
        return {}
    described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    return {
        name: {key: str(entry.get("value")) for key, entry in configs.items()}
        for name, configs in described.items()
    }


def _drift(spec: TopicSpec, partitions: int, rf: int, configs: Mapping[str, str]) -> list[str]:
    drift = []
    if partitions != spec.partitions:
        drift.append(f"partitions {partitions}, expected {spec.partitions}")
    if rf != spec.replication_factor:
        drift.append(f"replication factor {rf}, expected {spec.replication_factor}")
    for key, expected in spec.configs.items():
        actual = configs.get(key)
        if actual != expected:
            drift.append(f"{key}={actual}, expected {expected}")
    return drift


def ensure_topics(
    bootstrap: str,
    settings: Settings,
    *,
    specs: list[TopicSpec] | None = None,
    timeout: float = 30.0,
) -> list[TopicState]:
    """Create the missing topics with explicit configs; describe them all, with drift.

    Topics that exist are not changed (their drift is reported). Safe to run
    concurrently: a topic created meanwhile by another process counts as existing.
    """
    from kafka.errors import TopicAlreadyExistsError

    specs = topic_specs(settings) if specs is None else specs
    names = [spec.name for spec in specs]
    keys = sorted({key for spec in specs for key in spec.configs})
    millis = int(timeout * 1000)
    admin = admin_client(bootstrap, request_timeout_ms=millis)
    try:
        existing = set(admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created: set[str] = set()
        if missing:
            request = {
                spec.name: {
                    "num_partitions": spec.partitions,
                    "replication_factor": spec.replication_factor,
                    "configs": dict(spec.configs),
                }
                for spec in missing
            }
            response = admin.create_topics(request, timeout_ms=millis, raise_errors=False)
            for topic in response.get("topics", []):
                code = topic.get("error_code", 0)
                if code == 0:
                    created.add(topic["name"])
                elif code != TopicAlreadyExistsError.errno:
                    raise RuntimeError(
                        f"could not create topic {topic['name']}: error {code} "
                        f"{topic.get('error_message') or ''}".rstrip()
                    )
            admin.wait_for_topics([spec.name for spec in missing], timeout_ms=millis)
        layout = _await_layout(admin, names, timeout)
        configs = _topic_configs(admin, names, keys)
    finally:
        admin.close()
    states = []
    for spec in specs:
        partitions, rf = layout[spec.name]
        actual = {key: configs.get(spec.name, {}).get(key, "?") for key in spec.configs}
        drift = () if spec.name in created else tuple(_drift(spec, partitions, rf, actual))
        states.append(
            TopicState(spec.name, partitions, rf, actual, spec.name in created, spec.purpose, drift)
        )
    return states


def _await_layout(admin: Any, names: list[str], timeout: float) -> dict[str, tuple[int, int]]:
    deadline = time.monotonic() + timeout
    while True:
        layout = _partition_layout(admin, names)
        if all(name in layout for name in names) or time.monotonic() >= deadline:
            missing = [name for name in names if name not in layout]
            if missing:
                raise RuntimeError(f"topics not visible after {timeout:.0f} s: {missing}")
            return layout
        time.sleep(0.1)


def topic_offsets(bootstrap: str, names: Iterable[str] | None = None) -> dict[str, list[int]]:
    """{topic: [end offset of partition 0, 1, ...]}; all non-internal topics by default."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    admin = admin_client(bootstrap, client_id="sijil-status")
    try:
        wanted = list(names) if names is not None else None
        described = admin.describe_topics(wanted)
        partitions = {
            t["name"]: sorted(p["partition_index"] for p in t.get("partitions") or [])
            for t in described
            if t.get("error_code", 0) == 0 and not t.get("is_internal", False)
            and not t["name"].startswith("__")
        }
        specs = {
            TopicPartition(name, index): OffsetSpec.LATEST
            for name, indexes in partitions.items()
            for index in indexes
        }
        found = admin.list_partition_offsets(specs) if specs else {}
    finally:
        admin.close()
    return {
        name: [int(found[TopicPartition(name, index)].offset) for index in indexes]
        for name, indexes in sorted(partitions.items())
    }


def topic_size_bytes(bootstrap: str, topic: str) -> int:
    """The topic's size on the brokers' disks, as they report it (DescribeLogDirs): what
    a history costs to keep, compressed batches and all."""
    admin = admin_client(bootstrap, client_id="sijil-topic-size")
    try:
        total = 0
        for broker in admin.describe_log_dirs([topic]):
            for log_dir in broker["log_dirs"]:
                for entry in log_dir.get("topics", []):
                    if entry.get("name") == topic:
                        total += sum(int(p.get("partition_size", 0))
                                     for p in entry.get("partitions", []))
        return total
    finally:
        admin.close()
