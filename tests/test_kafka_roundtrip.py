"""A round trip through Kafka changes nothing, and a change on the way is caught.

(a) For any generated history (tests/strategies.py): ingested, published and read back
    with the codec, the topic holds exactly the store's contract records, field for
    field, each partition in store order.
(b) On records read back from the topic, the hash chain (domain.integrity.verify_chain)
    names the version where two adjacent events were swapped, one was dropped, or a
    payload value was altered (invariant 6 of DESIGN.md).
"""

from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.codec import decode, key_of
from consumers.publisher import Publisher
from domain.ingest import ingest
from domain.integrity import ChainProblem, verify_chain
from domain.ledger import Ledger
from simulator import simulate
from tests.kafka_reading import decoded, read_topic
from tests.strategies import histories
from tests.test_ledger_properties import all_records, counting_clock, lines

ROUND_TRIPS = settings(max_examples=15, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture,
                                              HealthCheck.too_slow])
_stores = itertools.count()


def publish(url: str, bootstrap: str, topic: str, page: int = 5000) -> int:
    publisher = Publisher(Ledger(url), bootstrap, topic, page=page)
    try:
        return publisher.publish_pending().published
    finally:
        publisher.close()


@ROUND_TRIPS
@given(history=histories())
def test_a_round_trip_through_kafka_changes_nothing(
        tmp_path: Path, kafka_bootstrap: str, fresh_topic: Callable[..., str],
        history: list[dict[str, Any]]) -> None:
    url = f"sqlite:///{tmp_path}/store{next(_stores)}.sqlite"
    ledger = Ledger(url, clock=counting_clock())
    ingest(ledger, lines(history))
    stored = all_records(ledger)
    topic = fresh_topic(partitions=3)

    assert publish(url, kafka_bootstrap, topic, page=25) == len(stored)  # a few transactions

    assert decoded(kafka_bootstrap, topic) == stored  # each once, field for field
    for partition, messages in read_topic(kafka_bootstrap, topic).items():
        keys = {m.key for m in messages}
        expected = [r for r in stored if key_of(r) in keys]
        assert [decode(m.value, m.headers) for m in messages] == expected, partition


# -- tampering is caught on what Kafka returns ------------------------------------------
@pytest.fixture(scope="module")
def streams_on_kafka(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
                     ) -> dict[str, list[dict[str, Any]]]:
    """Streams of at least 4 events, as read back from a topic: {stream: records}."""
    from consumers.topics import admin_client

    folder = tmp_path_factory.mktemp("tamper")
    simulate(establishments=20, months=1, seed=23, out=folder / "requests.jsonl")
    url = f"sqlite:///{folder}/events.sqlite"
    with (folder / "requests.jsonl").open("rb") as requests:
        ingest(Ledger(url, clock=counting_clock()), requests)
    topic = f"test.tamper.{folder.name}"
    admin = admin_client(kafka_bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()
    publish(url, kafka_bootstrap, topic)
    by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in decoded(kafka_bootstrap, topic):
        by_stream[record["stream"]].append(record)
    long = {s: records for s, records in by_stream.items()
            if len(records) >= 4 and all(r["payload"] for r in records)}
    assert long, "the simulation holds no stream long enough to tamper with"
    return long


def check(stream: str, records: list[dict[str, Any]]) -> list[ChainProblem]:
    """What a Kafka reader runs: each record at the version it says it has."""
    return verify_chain(stream, [(r["stream_version"], r) for r in records],
                        {r["stream_version"]: r["position"] for r in records})


def test_the_streams_read_back_verify(streams_on_kafka: dict[str, list[dict[str, Any]]]
                                      ) -> None:
    for stream, records in streams_on_kafka.items():
        assert check(stream, records) == []


tampered = given(data=st.data())


@settings(max_examples=40, deadline=None)
@tampered
def test_two_adjacent_events_swapped_are_caught_at_the_first_of_them(
        streams_on_kafka: dict[str, list[dict[str, Any]]], data: st.DataObject) -> None:
    stream = data.draw(st.sampled_from(sorted(streams_on_kafka)))
    records = list(streams_on_kafka[stream])
    i = data.draw(st.integers(0, len(records) - 2))
    records[i], records[i + 1] = records[i + 1], records[i]
    version = i + 1  # the slot where the order breaks

    problems = check(stream, records)

    first = problems[0]
    assert (first.stream, first.version) == (stream, version + 1)
    assert first.problem == f"version {version + 1} where {version} was due"
    assert first.position == records[i]["position"]
    assert {p.version for p in problems} <= {version, version + 1, version + 2}


@settings(max_examples=40, deadline=None)
@tampered
def test_a_dropped_event_is_caught_at_the_one_after_it(
        streams_on_kafka: dict[str, list[dict[str, Any]]], data: st.DataObject) -> None:
    stream = data.draw(st.sampled_from(sorted(streams_on_kafka)))
    records = list(streams_on_kafka[stream])
    i = data.draw(st.integers(0, len(records) - 2))  # not the last: see docs/contract.md
    dropped = records.pop(i)
    version = dropped["stream_version"]

    problems = check(stream, records)

    assert [(p.version, p.problem.split(" ")[0]) for p in problems] == [
        (version + 1, "version"), (version + 1, "prev_hash")]
    assert problems[0].problem == f"version {version + 1} where {version} was due"


@settings(max_examples=40, deadline=None)
@tampered
def test_an_altered_payload_value_is_caught_at_its_event(
        streams_on_kafka: dict[str, list[dict[str, Any]]], data: st.DataObject) -> None:
    stream = data.draw(st.sampled_from(sorted(streams_on_kafka)))
    records = copy.deepcopy(streams_on_kafka[stream])
    i = data.draw(st.integers(0, len(records) - 1))
    payload = records[i]["payload"]
    field = data.draw(st.sampled_from(sorted(payload)))
    payload[field] = _other(payload[field])

    problems = check(stream, records)

    assert problems == [ChainProblem(stream, i + 1, records[i]["position"],
                                     "hash does not match the event's content")]


def _other(value: Any) -> Any:
    """A different value of the same kind, as a forger would write."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "0"
    if isinstance(value, list):
        return [*value, "forged"]
    if isinstance(value, dict):
        return {**value, "forged": True}
    return "forged"
