"""`sijil verify` and digests (invariant 6 of DESIGN.md), on generated histories.

(a) An untouched history verifies, in the store and on Kafka (with the publisher's
    digest records, across a restart).
(b) In the store, an altered, dropped, inserted or swapped event is reported at its
    stream, version and position; the chain problems agree with Ledger.verify_stream.
(c) The same four on a copy of the topic (verify_records), with and without the store.
(d) A digest kept before an alteration at or before its position no longer matches; one
    kept before an append-only continuation still does; `sijil verify --digest` exits 1
    on the first and 0 on the second.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from consumers.publisher import Publisher, read_digest_records
from domain.chain import chain_hash, hashed_body
from domain.compression import decompress
from domain.envelope import contract_record
from domain.ingest import ingest
from domain.integrity import ChainProblem
from domain.ledger import Ledger
from portal.verify_cli import digest_command, verify_command
from replay.digests import check_digest, compute_digest
from replay.verify import Report, verify_records, verify_store, verify_topic
from simulator import simulate
from tests.kafka_reading import read_topic
from tests.strategies import histories
from tests.test_kafka_roundtrip import _other
from tests.test_ledger_properties import all_records, counting_clock, lines

Record = dict[str, Any]
FAST = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FEW = settings(FAST, max_examples=4)
INDEX = ("missing:", "not in the store's index", "the store's index lists")
_dbs = itertools.count()


def stored(tmp: Path, history: list[Record]) -> tuple[str, Ledger, list[Record]]:
    url = f"sqlite:///{tmp}/verify{next(_dbs)}.sqlite"
    ledger = Ledger(url, clock=counting_clock())
    ingest(ledger, lines(history))
    return url, ledger, all_records(ledger)


def where(problems: list[ChainProblem]) -> set[tuple[str, int, int | None]]:
    return {(p.stream, p.version, p.position) for p in problems}


def spot(record: Record) -> tuple[str, int, int]:
    return record["stream"], record["stream_version"], record["position"]


def streams_of(records: list[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for record in records:
        out.setdefault(record["stream"], []).append(record)
    return out


# -- tampering with the store, as someone with write access to the database would --------
def _sql(url: str, statement: str, **params: Any) -> Any:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def _row(url: str, position: int) -> tuple[Any, int, str, bytes]:
    """A row as the recorder reads it: its bytes decompressed. A tamperer writes plain
    JSON back, which the recorder reads as it is."""
    (row,) = _sql(url, "SELECT originator_id, originator_version, topic, state "
                       "FROM sijil_events WHERE id = :p", p=position)
    return row[0], row[1], row[2], decompress(bytes(row[3]))


def _event(ledger: Ledger, url: str, position: int) -> Any:
    originator, version, topic, state = _row(url, position)
    return ledger.mapper.to_domain_event(StoredEvent(
        originator_id=uuid.UUID(bytes=originator) if isinstance(originator, bytes)
        else originator, originator_version=version, topic=topic, state=state))


def alter(url: str, ledger: Ledger, target: Record, data: st.DataObject) -> None:
    """Change one value of the event and store it in the ledger's own encoding."""
    event = _event(ledger, url, target["position"])
    part = event.payload if event.payload else event.request
    name = data.draw(st.sampled_from(sorted(part)), label="field")
    part[name] = _other(part[name])
    _sql(url, "UPDATE sijil_events SET state = :s WHERE id = :p",
         s=ledger.mapper.to_stored_event(event).state, p=target["position"])


def drop(url: str, target: Record) -> None:
    _sql(url, "DELETE FROM sijil_events WHERE id = :p", p=target["position"])


def insert(url: str, ledger: Ledger, last: Record, forged: bool) -> int:
    """A new event at the end of `last`'s stream: a copy of `last` at the next version,
    or (forged) one whose prev_hash and hash are what an honest append would have."""
    originator, version, topic, state = _row(url, last["position"])
    if forged:
        event = _event(ledger, url, last["position"])
        object.__setattr__(event, "originator_version", version + 1)
        object.__setattr__(event, "prev_hash", event.hash)
        object.__setattr__(event, "event_id", str(uuid.uuid4()))
        object.__setattr__(event, "hash", chain_hash(hashed_body(contract_record(event))))
        state = ledger.mapper.to_stored_event(event).state
    _sql(url, "INSERT INTO sijil_events (originator_id, originator_version, topic, state) "
              "VALUES (:o, :v, :t, :s)", o=originator, v=version + 1, t=topic, s=state)
    return int(_sql(url, "SELECT max(id) FROM sijil_events")[0][0])


def swap(url: str, one: Record, other: Record) -> None:
    a, b = _row(url, one["position"])[3], _row(url, other["position"])[3]
    _sql(url, "UPDATE sijil_events SET state = :s WHERE id = :p", s=b, p=one["position"])
    _sql(url, "UPDATE sijil_events SET state = :s WHERE id = :p", s=a, p=other["position"])


def chain_part(report: Report, stream: str) -> list[tuple[int, str]]:
    return [(p.version, p.problem) for p in report.problems
            if p.stream == stream and not p.problem.startswith(INDEX)]


@FAST
@given(history=histories(max_steps=15), data=st.data())
def test_store_tampering_is_reported_where_it_happened(
        tmp_path: Path, history: list[Record], data: st.DataObject) -> None:
    url, ledger, records = stored(tmp_path, history)
    clean = verify_store(ledger, page=7)  # pages end mid-stream
    assert (clean.problems, clean.notes) == ([], [])
    assert (clean.events, clean.streams) == (len(records), len(streams_of(records)))
    kept = compute_digest(ledger)

    kind = data.draw(st.sampled_from(["alter", "drop", "insert", "swap"]), label="kind")
    streams = streams_of(records)
    if kind == "alter":
        target = data.draw(st.sampled_from(records), label="target")
        alter(url, ledger, target, data)
        expected = [ChainProblem(*spot(target), "hash does not match the event's content")]
    elif kind == "drop":
        target = data.draw(st.sampled_from(records), label="target")
        drop(url, target)
        expected = [ChainProblem(*spot(target), "missing: the store's index lists this "
                                                "event, the store lacks it")]
        after = [r for r in streams[target["stream"]]
                 if r["stream_version"] == target["stream_version"] + 1]
        expected += [ChainProblem(*spot(r), f"version {r['stream_version']} where "
                                            f"{target['stream_version']} was due")
                     for r in after]
    elif kind == "insert":
        stream = data.draw(st.sampled_from(sorted(streams)), label="stream")
        last, forged = streams[stream][-1], data.draw(st.booleans(), label="forged")
        position = insert(url, ledger, last, forged)
        expected = [ChainProblem(stream, last["stream_version"] + 1, position,
                                 "not in the store's index: recorded outside the ledger")]
    else:
        stream = data.draw(st.sampled_from(sorted(s for s in streams if len(streams[s]) > 1)),
                           label="stream")
        one, other = data.draw(st.lists(st.sampled_from(streams[stream]), min_size=2,
                                        max_size=2, unique_by=lambda r: r["position"]))
        swap(url, one, other)
        expected = []

    reopened = Ledger(url)
    report = verify_store(reopened, page=data.draw(st.sampled_from([3, 5000]), label="page"))
    assert report.problems, f"{kind} went unnoticed"
    assert all(p in report.problems for p in expected), (kind, report.problems)
    if kind == "alter":
        assert report.problems == expected
    if kind == "swap":
        assert {spot(one), spot(other)} <= where(report.problems)
    # the chain part is what Ledger.verify_stream finds, stream by stream
    for stream in {p.stream for p in report.problems}:
        assert chain_part(report, stream) == [
            (p.version, p.problem) for p in reopened.verify_stream(uuid.UUID(stream))]

    mismatch = check_digest(kept, compute_digest(reopened, kept["position"]))
    # an insertion lands after the kept position: from the digest's view an append
    assert bool(mismatch) == (kind != "insert"), mismatch


@settings(FAST, max_examples=10)
@given(history=histories(max_steps=10), more=histories(max_steps=10))
def test_a_digest_survives_an_append_only_continuation(
        tmp_path: Path, history: list[Record], more: list[Record]) -> None:
    _, ledger, records = stored(tmp_path, history)
    kept = compute_digest(ledger)
    assert (kept["position"], kept["events"]) == (records[-1]["position"], len(records))
    report = verify_store(ledger, digest_at=kept["position"])
    assert report.digest is not None and report.digest["digest"] == kept["digest"]

    ingest(ledger, lines(more))  # the same world again: refusals are recorded too
    assert verify_store(ledger).ok
    assert check_digest(kept, compute_digest(ledger, kept["position"])) == []
    assert compute_digest(ledger)["digest"] != kept["digest"]


# -- the command line ----------------------------------------------------------------------
def cli() -> typer.Typer:
    """The two commands as portal/cli.py wires them."""
    app = typer.Typer()
    app.command("verify")(verify_command)
    app.command("digest")(digest_command)
    return app


@settings(FAST, max_examples=2)
@given(history=histories(max_steps=8), more=histories(max_steps=3))
def test_the_command_line_keeps_and_checks_a_digest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: list[Record],
        more: list[Record]) -> None:
    url, ledger, records = stored(tmp_path, history)
    monkeypatch.setenv("SIJIL_DATABASE_URL", url)
    runner, app, kept = CliRunner(), cli(), tmp_path / "kept.json"

    made = runner.invoke(app, ["digest", "--out", str(kept)])
    assert made.exit_code == 0, made.output
    assert orjson.loads(kept.read_bytes())["position"] == records[-1]["position"]
    ok = runner.invoke(app, ["verify", "--no-topic", "--digest", str(kept)])
    assert ok.exit_code == 0, ok.output
    assert "digest matches" in ok.output and "intact" in ok.output

    ingest(ledger, lines(more))
    assert runner.invoke(app, ["verify", "--no-topic", "--digest", str(kept)]).exit_code == 0

    target = records[len(records) // 2]
    drop(url, target)
    bad = runner.invoke(app, ["verify", "--no-topic", "--digest", str(kept)])
    assert bad.exit_code == 1, bad.output
    assert "digest mismatch" in bad.output and target["stream"] in bad.output
    junk = tmp_path / "junk.json"
    junk.write_text("[1]")
    assert runner.invoke(app, ["verify", "--no-topic", "--digest", str(junk)]).exit_code == 2


# -- Kafka -----------------------------------------------------------------------------------
def publish(url: str, bootstrap: str, topic: str, digests: str, every: int | None) -> int:
    publisher = Publisher(Ledger(url), bootstrap, topic, page=7, digests_every=every,
                          digests_topic=digests)
    try:
        return publisher.publish_pending().published
    finally:
        publisher.close()


@FEW
@given(history=histories(max_steps=12), more=histories(max_steps=12),
       every=st.integers(1, 9))
def test_a_published_history_and_its_digests_verify_on_the_topic(
        tmp_path: Path, kafka_bootstrap: str, fresh_topic: Callable[..., str],
        history: list[Record], more: list[Record], every: int) -> None:
    half = len(history) // 2
    url, ledger, _ = stored(tmp_path, history[:half])
    topic, digests = fresh_topic(partitions=3), fresh_topic(partitions=1)
    before = publish(url, kafka_bootstrap, topic, digests, None)  # no digests yet
    ingest(ledger, lines(history[half:]))
    publish(url, kafka_bootstrap, topic, digests, every)  # digests recomputed from store
    ingest(ledger, lines(more))
    publish(url, kafka_bootstrap, topic, digests, every)  # resumed from the last record

    records = all_records(ledger)
    report = verify_topic(kafka_bootstrap, topic, ledger, digests_topic=digests)
    assert (report.problems, report.notes) == ([], [])
    assert (report.events, report.streams) == (len(records), len(streams_of(records)))
    written = read_digest_records(kafka_bootstrap, digests)
    first = (before // every + 1) * every  # counted from the start, written once turned on
    assert [d["events"] for d in written] == list(range(first, len(records) + 1, every))
    for kept in written:  # each one an auditor could keep and check against the store
        assert check_digest(kept, compute_digest(ledger, kept["position"])) == []


@pytest.fixture(scope="module")
def topic_copy(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
               ) -> tuple[list[Record], list[Record], list[Record]]:
    """(records as read from a topic, partition by partition; the store's; the digests)."""
    from consumers.topics import admin_client

    folder = tmp_path_factory.mktemp("verify-copy")
    simulate(establishments=15, months=1, seed=31, out=folder / "requests.jsonl")
    url = f"sqlite:///{folder}/events.sqlite"
    with (folder / "requests.jsonl").open("rb") as requests:
        ingest(Ledger(url, clock=counting_clock()), requests)
    topic, digests = f"test.verify.{folder.name}", f"test.verify.{folder.name}.digests"
    admin = admin_client(kafka_bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1},
                             digests: {"num_partitions": 1, "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()
    publish(url, kafka_bootstrap, topic, digests, 50)
    on_topic = [orjson.loads(m.value) for part in read_topic(kafka_bootstrap, topic).values()
                for m in part]
    return on_topic, all_records(Ledger(url)), read_digest_records(kafka_bootstrap, digests)


@settings(FAST, max_examples=40)
@given(data=st.data())
def test_topic_tampering_is_reported_where_it_happened(
        topic_copy: tuple[list[Record], list[Record], list[Record]],
        data: st.DataObject) -> None:
    original, store, digests = topic_copy
    assert verify_records(original, store, digests).ok
    records = copy.deepcopy(original)
    by_position = sorted(records, key=lambda r: r["position"])
    streams = streams_of(by_position)
    kind = data.draw(st.sampled_from(["alter", "drop", "insert", "duplicate", "swap",
                                      "reorder"]), label="kind")
    expected: set[tuple[str, int, int | None]] = set()
    if kind == "alter":
        target = data.draw(st.sampled_from(records), label="target")
        part = target["payload"] if target["payload"] else target["request"]
        name = data.draw(st.sampled_from(sorted(part)), label="field")
        part[name] = _other(part[name])
        expected = {spot(target)}
    elif kind == "drop":
        target = data.draw(st.sampled_from(records), label="target")
        records.remove(target)
        expected = {spot(target)}  # with the store: missing from the topic
    elif kind in ("insert", "duplicate"):
        stream = data.draw(st.sampled_from(sorted(streams)), label="stream")
        last = streams[stream][-1]
        forged = copy.deepcopy(last)
        if kind == "insert":
            forged.update(stream_version=last["stream_version"] + 1,
                          position=by_position[-1]["position"] + 1)
            if data.draw(st.booleans(), label="well forged"):
                forged.update(prev_hash=last["hash"], event_id=str(uuid.uuid4()))
                forged["hash"] = chain_hash(hashed_body(forged))
        records.append(forged)
        expected = {spot(forged)}
    else:
        stream = data.draw(st.sampled_from(sorted(s for s in streams if len(streams[s]) > 1)),
                           label="stream")
        one, other = sorted(data.draw(st.lists(st.sampled_from(streams[stream]), min_size=2,
                                               max_size=2, unique_by=lambda r: r["position"])),
                            key=lambda r: r["position"])
        i, j = records.index(one), records.index(other)
        if kind == "swap":  # two events trade places in the global order
            one["position"], other["position"] = other["position"], one["position"]
            expected = {spot(one), spot(other)}
        elif one["establishment_id"] == other["establishment_id"]:  # same key: one partition
            records[i], records[j] = records[j], records[i]
            expected = {spot(one)}  # comes after a later one of its key
        else:
            return

    with_store = verify_records(records, store, digests)
    if kind == "drop" and target["position"] == by_position[-1]["position"]:
        # the very last event: the store says it is not published yet, unless digested
        if any(d["position"] == target["position"] for d in digests):
            assert any(p.problem.startswith("a digest covers") for p in with_store.problems)
        else:
            assert with_store.ok and with_store.notes
        return
    assert with_store.problems, f"{kind} went unnoticed"
    assert expected <= where(with_store.problems), (kind, with_store.problems)
    alone = verify_records(records)  # no store, no digests: the chain and order alone
    if kind == "drop":
        after = [r for r in streams[target["stream"]]
                 if r["stream_version"] == target["stream_version"] + 1]
        expected = {spot(r) for r in after}  # a gap there; a stream's last: nothing
    if kind == "insert":
        expected = set() if forged["prev_hash"] == last["hash"] else expected
    assert expected <= where(alone.problems), (kind, alone.problems)
    assert bool(alone.problems) == bool(expected)


def test_a_dropped_last_event_shows_against_the_store_or_a_digest(
        topic_copy: tuple[list[Record], list[Record], list[Record]]) -> None:
    records, store, digests = topic_copy
    last = max(records, key=lambda r: r["position"])
    kept = [r for r in records if r is not last]
    noted = verify_records(kept, store)
    assert noted.ok and "1 store events from position" in noted.notes[0]
    earlier = [d for d in digests if d["position"] < last["position"]]
    covered = {**earlier[-1], "position": last["position"], "events": len(records),
               "digest": "0" * 64}
    report = verify_records(kept, store, [*earlier, covered])
    assert [p.problem.startswith("a digest covers position") for p in report.problems] == [True]
