"""The publisher: the event store's notification log, in order, onto the events topic.

Exactly once. Each page of the log goes out in one Kafka transaction; on start the
producer's transactional id fences any earlier incarnation and aborts its open
transaction, and only then is the resume point read back from Kafka with
read_committed: the highest `position` committed. Transactions commit in log order, so
everything up to that position is on the topic and nothing after it is, whatever
instant the previous publisher died at.

Digests (optional, `digests_every=N`): a running digest over the global order,
digest_p = sha256(digest_{p-1} ":" position ":" hash), with digest_0 = 64 zeros; every N
events a digest record goes to the digests topic in the page's transaction, so a digest
commits with the events it covers. On restart the digest resumes from the last digest
record of this topic on the digests topic (Kafka, not the store, so that a store altered
since cannot launder itself into later digests) and folds the store's events after it up
to the resume position; with no digest record yet it is recomputed from the store.
replay/digests.py computes and checks digests for auditors.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.codec import encode
from consumers.inspection import settled_end_offsets
from consumers.topics import DIGESTS_TOPIC
from domain.chain import GENESIS
from domain.ledger import Ledger
from domain.settings import Compression, Settings


@dataclass
class PublishReport:
    resumed_after: int
    published: int
    last_position: int


@dataclass(frozen=True)
class RunningDigest:
    """The ledger digest after `events` events, the last at `position` (QLDB-style)."""

    position: int = 0
    digest: str = GENESIS
    events: int = 0

    def fold(self, position: int, event_hash: str) -> RunningDigest:
        step = f"{self.digest}:{position}:{event_hash}".encode()
        return RunningDigest(position, hashlib.sha256(step).hexdigest(), self.events + 1)

    def record(self, topic: str | None) -> dict[str, Any]:
        return {"position": self.position, "digest": self.digest, "events": self.events,
                "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "topic": topic}


def read_digest_records(bootstrap: str, digests_topic: str) -> list[dict[str, Any]]:
    """Every committed digest record of the digests topic, in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(digests_topic, p)
                      for p in sorted(consumer.partitions_for_topic(digests_topic) or ())]
        if not partitions:
            raise RuntimeError(f"topic {digests_topic} does not exist: run `sijil kafka up`")
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends, out = settled_end_offsets(consumer, bootstrap, partitions), []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for messages in consumer.poll(timeout_ms=1000).values():
                for message in messages:
                    try:
                        out.append(orjson.loads(message.value or b""))
                    except orjson.JSONDecodeError:
                        continue  # not a digest record: nothing to resume from
        return [r for r in out if isinstance(r, dict) and isinstance(r.get("position"), int)]
    finally:
        consumer.close()


def last_committed_position(bootstrap: str, topic: str, tail: int = 64) -> int:
    """The highest store position on the topic, read with read_committed."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=2000)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise RuntimeError(f"topic {topic} does not exist: run `sijil kafka up`")
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        begins = consumer.beginning_offsets(partitions)
        best = 0
        for tp in partitions:
            if ends[tp] > begins[tp]:
                best = max(best, _tail_position(consumer, tp, begins[tp], ends[tp], tail))
        return best
    finally:
        consumer.close()


def _tail_position(consumer: KafkaConsumer, tp: TopicPartition, begin: int, end: int,
                   tail: int) -> int:
    """The last record's position; transaction markers take offsets too, so read a tail."""
    start, best = max(begin, end - tail), 0
    while True:
        consumer.seek(tp, start)
        while consumer.position(tp) < end:
            batch = consumer.poll(timeout_ms=1000).get(tp, [])
            if not batch and consumer.position(tp) < end:
                continue
            for message in batch:
                best = max(best, int(orjson.loads(message.value)["position"]))
        if best or start == begin:
            return best
        start = max(begin, start - tail * 4)


class Publisher:
    def __init__(self, ledger: Ledger, bootstrap: str, topic: str, *,
                 transactional_id: str | None = None, page: int = 5000,
                 producer_options: dict[str, Any] | None = None,
                 digests_every: int | None = None,
                 digests_topic: str = DIGESTS_TOPIC,
                 compression: Compression | None = None) -> None:
        self.ledger = ledger
        self.bootstrap = bootstrap
        self.topic = topic
        self.page = page
        self.digests_every = digests_every
        self.digests_topic = digests_topic
        codec = (Settings(kafka_compression=compression) if compression
                 else Settings()).kafka_compression_type()
        options = {"enable_idempotence": True, "acks": "all", "linger_ms": 50,
                   "batch_size": 512 * 1024, "compression_type": codec,
                   **(producer_options or {})}
        # One transactional id a topic: a restarted publisher fences its predecessor.
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            transactional_id=transactional_id or f"sijil-publisher.{topic}", **options)
        self.producer.init_transactions()  # fences an earlier publisher, aborts its txn
        self.position = last_committed_position(bootstrap, topic)
        self.digest = self._resume_digest() if digests_every else RunningDigest()

    def _resume_digest(self) -> RunningDigest:
        """The digest at the resume position: the last digest record, then the store."""
        kept = [r for r in read_digest_records(self.bootstrap, self.digests_topic)
                if r.get("topic") == self.topic and int(r["position"]) <= self.position]
        last = max(kept, key=lambda r: int(r["position"]), default=None)
        digest = RunningDigest() if last is None else RunningDigest(
            int(last["position"]), str(last["digest"]), int(last["events"]))
        select = self.ledger.recorder.select_notifications
        while digest.position < self.position and (notes := select(
                start=digest.position, limit=self.page, stop=self.position,
                inclusive_of_start=False)):
            for note in notes:
                digest = digest.fold(note.id, self.ledger.record_of(note)["hash"])
        return digest

    def publish_pending(self, progress: Callable[[int], None] | None = None) -> PublishReport:
        """Publish everything the store holds beyond the topic's last position."""
        resumed, published = self.position, 0
        while notes := self.ledger.recorder.select_notifications(
                start=self.position, limit=self.page, inclusive_of_start=False):
            self._publish_page(notes)
            published += len(notes)
            if progress:
                progress(published)
        return PublishReport(resumed, published, self.position)

    def _publish_page(self, notes: Sequence[Any]) -> None:
        self.producer.begin_transaction()
        digest, every = self.digest, self.digests_every
        try:
            for note in notes:
                record = self.ledger.record_of(note)
                key, value, headers = encode(record)
                self.producer.send(self.topic, key=key, value=value, headers=headers)
                if every:
                    digest = digest.fold(note.id, record["hash"])
                    if digest.events % every == 0:
                        self.producer.send(self.digests_topic, key=self.topic.encode(),
                                           value=orjson.dumps(digest.record(self.topic)))
            self.producer.commit_transaction()
        except BaseException:
            self.producer.abort_transaction()
            raise
        self.position, self.digest = notes[-1].id, digest

    def follow(self, stop: threading.Event, interval: float = 0.5,
               progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while not stop.is_set():
            total += self.publish_pending(progress).published
            stop.wait(interval)
        return total

    def close(self) -> None:
        self.producer.close()
