"""A reader that is not Python: kcat (librdkafka, C) reads the events topic, and every
record it sees keeps the contract of docs/contract.md — one message per stored event,
keyed by establishment (or stream), the four headers agreeing with the value, and the
value valid against its JSON Schema file under schemas/events/ (Draft 2020-12).

kcat -J prints one JSON envelope a message: {"topic", "partition", "offset", "tstype",
"ts", "broker", "headers": [name1, value1, name2, value2, ...], "key", "payload"},
key and payload as strings. Without kcat the test is skipped, except under CI (env CI
set), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from consumers.codec import CONTENT_TYPE, HEADERS
from consumers.publisher import Publisher
from domain.ingest import ingest
from domain.ledger import Ledger
from simulator import simulate
from tests.test_ledger_properties import all_records, counting_clock

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "events"


def kcat_or_skip() -> str:
    found = shutil.which("kcat") or shutil.which("kafkacat")
    if found is None:
        reason = "kcat is not installed (Debian: apt-get install kcat)"
        if os.environ.get("CI"):
            pytest.fail(f"kcat is required under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def kcat_read(kcat: str, bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every committed message of the topic as kcat -J prints it."""
    done = subprocess.run(
        [kcat, "-C", "-b", bootstrap, "-t", topic, "-e", "-o", "beginning", "-q",
         "-X", "isolation.level=read_committed", "-J"],
        capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@cache
def validator(event_type: str, schema_version: int) -> Draft202012Validator:
    path = SCHEMAS / f"{event_type}.v{schema_version}.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("kcat")
    simulate(establishments=40, months=1, seed=17, out=folder / "requests.jsonl", leaks=1)
    url = f"sqlite:///{folder}/events.sqlite"
    with (folder / "requests.jsonl").open("rb") as lines:
        ingest(Ledger(url, clock=counting_clock()), lines)
    return url


def test_kcat_reads_every_event_with_its_key_headers_and_a_valid_value(
        store: str, kafka_bootstrap: str, fresh_topic: Callable[..., str]) -> None:
    kcat = kcat_or_skip()
    topic = fresh_topic(partitions=4)
    ledger = Ledger(store)
    publisher = Publisher(ledger, kafka_bootstrap, topic, page=300)  # several transactions
    publisher.publish_pending()
    publisher.close()
    stored = all_records(ledger)

    messages = kcat_read(kcat, kafka_bootstrap, topic)

    assert len(messages) == len(stored) > 500
    assert {m["partition"] for m in messages} == {0, 1, 2, 3}
    values = []
    for m in messages:
        value = json.loads(m["payload"])
        values.append(value)
        where = f"{m['partition']}/{m['offset']}"
        assert m["key"] == (value["establishment_id"] or value["stream"]), where
        names, texts = m["headers"][0::2], m["headers"][1::2]
        assert tuple(names) == HEADERS, where
        assert dict(zip(names, texts, strict=True)) == {
            "event_type": value["event_type"],
            "schema_version": str(value["schema_version"]),
            "event_id": value["event_id"],
            "content_type": CONTENT_TYPE,
        }, where
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in
                  validator(value["event_type"], value["schema_version"]).iter_errors(value)]
        assert errors == [], f"{where} {value['event_type']}: {errors}"
    # what a C reader sees is what the store holds: each event once, field for field
    assert sorted(values, key=lambda v: v["position"]) == stored
    # some events belong to no establishment (an account's logins): keyed by stream
    assert any(v["establishment_id"] is None for v in values)
