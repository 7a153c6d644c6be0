"""`sijil verify`: every stream's hash chain, in the store and on Kafka (invariant 6).

The store (`verify_store`): one pass over the notification log in position order, a page
at a time, keeping per stream only the next version due and the previous hash. Each
event is decoded byte-exactly (the stored bytes must be the canonical encoding the
ledger wrote) and re-hashed, so an altered event breaks its own hash, a dropped one
leaves a version gap, an inserted one a broken `prev_hash` or a repeated version, and a
reordered one versions out of order or a broken link. The log is also joined with the
store's index (domain.persistence.EVENT_INDEX), written in the events' transaction:
an event the index lists but the store lacks (a stream's dropped *last* event, which
breaks no link) and an event the index does not know (a forged append, even with a
well-forged hash) are reported too.

The topic (`verify_topic`, `verify_records` on a list): each partition read with
read_committed, merged into position order; positions strictly increasing (no
duplicates) and each key's records in position order; each stream's versions
contiguous from 1 with a valid chain; with a ledger, the topic holds exactly the
store's positions with equal stream, version and hash (store events after the topic's
last position are only noted: the publisher may not have reached them yet); and every
digest record the publisher wrote for the topic equals the digest of the topic's
records up to its position. Records are checked as written, not upcast: an upcaster
changes the content the hash covers.

Both stream through the history with memory per stream and per key, not per event.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import select

from consumers.codec import key_of
from consumers.inspection import settled_end_offsets
from consumers.topics import DIGESTS_TOPIC
from domain.chain import GENESIS, verify_record
from domain.integrity import ChainProblem
from domain.ledger import Ledger
from domain.persistence import EVENT_INDEX
from replay.digests import RunningDigest, checked_records, event_hash, read_digest_records

Record = dict[str, Any]
StoreEntry = tuple[int, str, int, str]  # position, stream, version, hash
Progress = Callable[[int], None]


@dataclass
class Report:
    """What a verification found: counts, problems in position order, and timing."""

    source: str
    events: int = 0
    streams: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    digest: Record | None = None  # the digest at the position asked for, when asked

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        verdict = "intact" if self.ok else f"{len(self.problems):,} problems"
        return (f"{self.source}: {self.events:,} events in {self.streams:,} streams, "
                f"{verdict} ({self.elapsed:.1f} s, {self.events_per_second:,.0f} events/s)")


class ChainWalk:
    """domain.integrity.verify_chain, one event at a time over many interleaved streams."""

    def __init__(self) -> None:
        self.due: dict[str, tuple[int, str]] = {}  # stream -> (next version, previous hash)

    def feed(self, stream: str, version: int, record: Record | Exception,
             position: int | None) -> list[ChainProblem]:
        expected_version, expected_prev = self.due.get(stream, (1, GENESIS))
        problems = []
        if version != expected_version:
            problems.append(ChainProblem(stream, version, position,
                                         f"version {version} where {expected_version} was due"))
        if isinstance(record, Exception):
            problems.append(ChainProblem(stream, version, position, f"undecodable: {record}"))
            self.due[stream] = (version + 1, "<unknown>")
            return problems
        if record.get("stream_version") != version:
            problems.append(ChainProblem(stream, version, position,
                                         f"record says version {record.get('stream_version')}"))
        problem = verify_record(record, expected_prev)
        if problem is not None:
            problems.append(ChainProblem(stream, version, position, problem))
        self.due[stream] = (version + 1, str(record.get("hash")))
        return problems


# -- the store ----------------------------------------------------------------------------
def _index_rows(ledger: Ledger, after: int, upto: int | None) -> dict[int, tuple[str, int]]:
    idx = EVENT_INDEX.c
    query = select(idx.position, idx.stream, idx.version).where(idx.position > after)
    if upto is not None:
        query = query.where(idx.position <= upto)
    with ledger.recorder.datastore.engine.connect() as conn:  # type: ignore[attr-defined]
        return {int(r[0]): (str(r[1]), int(r[2])) for r in conn.execute(query)}


def _has_index(ledger: Ledger) -> bool:
    with ledger.recorder.datastore.engine.connect() as conn:  # type: ignore[attr-defined]
        return conn.execute(select(EVENT_INDEX.c.position).limit(1)).first() is not None


def _unindexed(stream: str, version: int, position: int,
               listed: tuple[str, int] | None) -> ChainProblem | None:
    if listed is None:
        return ChainProblem(stream, version, position,
                            "not in the store's index: recorded outside the ledger")
    if listed != (stream, version):
        return ChainProblem(stream, version, position, f"the store's index lists stream "
                                                       f"{listed[0]} version {listed[1]} here")
    return None


def _missing(position: int, listed: tuple[str, int]) -> ChainProblem:
    return ChainProblem(listed[0], listed[1], position,
                        "missing: the store's index lists this event, the store lacks it")


def verify_store(ledger: Ledger, progress: Progress | None = None, *, page: int = 5000,
                 digest_at: int | None = None) -> Report:
    """Every stream's chain in the store, with the index joined in; `progress` gets the
    number of events checked so far. With `digest_at`, also the digest up to there."""
    began = time.perf_counter()
    report, walk, digest = Report("store"), ChainWalk(), RunningDigest()
    indexed = _has_index(ledger)
    if not indexed and ledger.recorder.max_notification_id():
        report.notes.append("the store's index is empty (a store from before it?): dropped "
                            "last events and forged appends were not looked for")
    previous, batch = 0, []
    for note, record in checked_records(ledger, 0, None, page):
        batch.append((note, record))
        if len(batch) == page:
            _check_page(ledger, report, walk, batch, previous, None, indexed)
            previous, batch = batch[-1][0].id, []
            if progress:
                progress(report.events)
        if digest_at is not None and note.id <= digest_at:
            digest = digest.fold(note.id, event_hash(record, note.state))
    _check_page(ledger, report, walk, batch, previous, "end", indexed)
    if progress:
        progress(report.events)
    if digest_at is not None:
        report.digest = {**digest.record(None), "position": digest_at}
    report.streams = len(walk.due)
    report.elapsed = time.perf_counter() - began
    return report


def _check_page(ledger: Ledger, report: Report, walk: ChainWalk,
                batch: list[tuple[Any, Record | Exception]], after: int, end: str | None,
                indexed: bool) -> None:
    upto = None if end else batch[-1][0].id
    listed = _index_rows(ledger, after, upto) if indexed else {}
    found: list[ChainProblem] = []
    for note, record in batch:
        stream, version = str(note.originator_id), int(note.originator_version)
        found += walk.feed(stream, version, record, note.id)
        if indexed:
            odd = _unindexed(stream, version, note.id, listed.pop(note.id, None))
            found += [odd] if odd else []
    found += [_missing(position, entry) for position, entry in listed.items()]
    report.problems += sorted(found, key=lambda p: p.position or 0)  # stable: stream order
    report.events += len(batch)


# -- the topic ----------------------------------------------------------------------------
@dataclass
class _Walk:
    """Checks a topic's records fed in position order (see the module's docstring)."""

    report: Report
    store: Iterator[StoreEntry] | None = None
    digests: list[Record] = field(default_factory=list)
    chain: ChainWalk = field(default_factory=ChainWalk)
    digest: RunningDigest = field(default_factory=RunningDigest)
    last: Record | None = None
    head: StoreEntry | None = None

    def __post_init__(self) -> None:
        self.digests = sorted(self.digests, key=lambda d: int(d["position"]))
        self.head = next(self.store, None) if self.store is not None else None

    def problem(self, record: Record, what: str) -> None:
        version = record.get("stream_version")
        self.report.problems.append(ChainProblem(
            str(record.get("stream", "?")), version if isinstance(version, int) else 0,
            record.get("position"), what))

    def feed(self, record: Record) -> None:
        position: int = record["position"]
        last = self.last["position"] if self.last is not None else None
        if last is not None and position <= last:
            if position == last and record == self.last:
                self.problem(record, "repeated: this position is on the topic twice")
                return
            self.problem(record, "repeated position: another event is on the topic here"
                         if position == last else f"out of order: after position {last}")
        else:
            self._due_digests(position)
            self.last = record
        self.report.events += 1
        stream, version = record.get("stream"), record.get("stream_version")
        if not isinstance(stream, str) or not isinstance(version, int):
            self.problem(record, "no stream or stream_version")
            return
        self.report.problems += self.chain.feed(stream, version, record, position)
        if last is None or position > last:
            self.digest = self.digest.fold(position, event_hash(record))
            self._join_store(position, stream, version, str(record.get("hash")), record)

    def _join_store(self, position: int, stream: str, version: int, hash_: str,
                    record: Record) -> None:
        if self.store is None:
            return
        while self.head is not None and self.head[0] < position:
            p, s, v, _ = self.head
            self.report.problems.append(ChainProblem(
                s, v, p, "missing from the topic: in the store, not on the topic"))
            self.head = next(self.store, None)
        if self.head is None or self.head[0] > position:
            self.problem(record, "extra: on the topic, not in the store")
            return
        _, s, v, h = self.head
        if (s, v) != (stream, version):
            self.problem(record, f"the store has stream {s} version {v} at this position")
        elif h != hash_:
            self.problem(record, f"hash differs from the store's ({h})")
        self.head = next(self.store, None)

    def _due_digests(self, upcoming: int | None) -> None:
        """Compare each digest record whose position is before `upcoming` (None: all)."""
        while self.digests and (upcoming is None or int(self.digests[0]["position"]) < upcoming):
            kept = self.digests.pop(0)
            at = int(kept["position"])
            where = ChainProblem(f"digest of {kept.get('topic')}", 0, at, "")
            if self.digest.position != at:
                self.report.problems.append(ChainProblem(
                    where.stream, 0, at, f"a digest covers position {at:,} but the topic has "
                    f"no event there (its events end at {self.digest.position:,} before it)"))
            elif (self.digest.digest, self.digest.events) != (kept["digest"], kept["events"]):
                self.report.problems.append(ChainProblem(
                    where.stream, 0, at, f"the topic's digest here is {self.digest.digest} "
                    f"after {self.digest.events:,} events; the digest record says "
                    f"{kept['digest']} after {kept['events']:,}"))

    def finish(self) -> None:
        self._due_digests(None)
        if self.store is not None and self.head is not None:
            behind = 1 + sum(1 for _ in self.store)
            self.report.notes.append(
                f"{behind:,} store events from position {self.head[0]:,} on are not on the "
                f"topic, which ends at position {self.digest.position:,}: not published yet?")
        self.report.streams = len(self.chain.due)


def _in_key_order(records: Iterable[Record], report: Report) -> Iterator[Record]:
    """The records, with those out of their key's order (one key, one partition) noted."""
    last: dict[bytes, int] = {}
    for record in records:
        key, position = key_of(record), record["position"]
        if key in last and position <= last[key]:
            report.problems.append(ChainProblem(
                str(record.get("stream", "?")), int(record.get("stream_version") or 0),
                position, f"out of order: after position {last[key]} of key {key.decode()}"))
        last[key] = max(position, last.get(key, position))
        yield record


def _valid(raw: Any, report: Report, where: str) -> Record | None:
    """A parsed record with an integer position, or None with the problem reported."""
    if not isinstance(raw, dict) or not isinstance(raw.get("position"), int) \
            or isinstance(raw.get("position"), bool):
        report.problems.append(ChainProblem(where, 0, None, "not an event record: no "
                                                            "integer position"))
        return None
    try:
        key_of(raw)
    except (KeyError, TypeError, AttributeError):
        report.problems.append(ChainProblem(str(raw.get("stream", where)), 0, raw["position"],
                                            "no establishment_id or stream to key it by"))
        return None
    return raw


def verify_records(records: Iterable[Record], store_records: Iterable[Record] | None = None,
                   digests: Iterable[Record] = (), source: str = "records") -> Report:
    """A copy of the topic: records in topic order (a partition's, or any order that keeps
    each key's), optionally the store's contract records and the topic's digest records."""
    began = time.perf_counter()
    report = Report(source)
    valid = [r for n, raw in enumerate(records)
             if (r := _valid(raw, report, f"record {n}")) is not None]
    store = None
    if store_records is not None:
        store = iter(sorted((int(r["position"]), str(r["stream"]), int(r["stream_version"]),
                             str(r["hash"])) for r in store_records))
    walk = _Walk(report, store, list(digests))
    for record in sorted(_in_key_order(valid, report), key=lambda r: r["position"]):
        walk.feed(record)
    walk.finish()
    report.problems.sort(key=lambda p: p.position or 0)
    report.elapsed = time.perf_counter() - began
    return report


def _partition(bootstrap: str, tp: TopicPartition,
               report: Report) -> Generator[Record, None, None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None, max_poll_records=5000)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = settled_end_offsets(consumer, bootstrap, [tp])[tp]
        while consumer.position(tp) < end:
            for message in consumer.poll(timeout_ms=1000).get(tp, []):
                where = f"partition {tp.partition} offset {message.offset}"
                try:
                    raw = orjson.loads(message.value) if message.value is not None else None
                except orjson.JSONDecodeError as error:
                    report.problems.append(ChainProblem(where, 0, None, f"not JSON: {error}"))
                    continue
                if (record := _valid(raw, report, where)) is not None:
                    yield record
    finally:
        consumer.close()


def _store_entries(ledger: Ledger, page: int = 5000) -> Iterator[StoreEntry]:
    start = 0
    while notes := ledger.recorder.select_notifications(start=start, limit=page,
                                                        inclusive_of_start=False):
        for note in notes:
            try:
                hash_ = str(ledger.record_of(note)["hash"])
            except Exception:  # verify_store says what is wrong with it
                hash_ = "<undecodable in the store>"
            yield note.id, str(note.originator_id), int(note.originator_version), hash_
        start = notes[-1].id


def verify_topic(bootstrap: str, topic: str, ledger: Ledger | None = None, *,
                 digests_topic: str | None = DIGESTS_TOPIC,
                 progress: Progress | None = None) -> Report:
    """The topic, read with read_committed and merged by position; with a ledger, compared
    with the store; with a digests topic, its digest records for `topic` checked."""
    began = time.perf_counter()
    report = Report(f"topic {topic}")
    digests: list[Record] = []
    if digests_topic:
        digests = [d for d in read_digest_records(bootstrap, digests_topic)
                   if isinstance(d, dict) and d.get("topic") == topic
                   and isinstance(d.get("position"), int)]
    probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(probe.partitions_for_topic(topic) or ())]
    finally:
        probe.close()
    if not partitions:
        raise RuntimeError(f"topic {topic} does not exist")
    readers = [_partition(bootstrap, tp, report) for tp in partitions]
    walk = _Walk(report, _store_entries(ledger) if ledger is not None else None, digests)
    try:
        merged = heapq.merge(*readers, key=lambda r: int(r["position"]))
        for record in _in_key_order(merged, report):
            walk.feed(record)
            if progress and report.events % 5000 == 0:
                progress(report.events)
    finally:
        for reader in readers:
            reader.close()
    walk.finish()
    if progress:
        progress(report.events)
    report.problems.sort(key=lambda p: p.position or 0)
    report.elapsed = time.perf_counter() - began
    return report
