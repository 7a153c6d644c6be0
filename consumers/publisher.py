"""The publisher: the event store's notification log, in order, onto the events topic.

Exactly once. Each page of the log goes out in one Kafka transaction; on start the
producer's transactional id fences any earlier incarnation and aborts its open
transaction, and only then is the resume point read back from Kafka with
read_committed: the highest `position` committed. Transactions commit in log order, so
everything up to that position is on the topic and nothing after it is, whatever
instant the previous publisher died at.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.codec import encode
from domain.ledger import Ledger


@dataclass
class PublishReport:
    resumed_after: int
    published: int
    last_position: int


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
                 producer_options: dict[str, Any] | None = None) -> None:
        self.ledger = ledger
        self.bootstrap = bootstrap
        self.topic = topic
        self.page = page
        self.producer = KafkaProducer(
            # One transactional id a topic: a restarted publisher fences its predecessor.
            bootstrap_servers=bootstrap,
            transactional_id=transactional_id or f"sijil-publisher.{topic}",
            enable_idempotence=True, acks="all", linger_ms=5, batch_size=256 * 1024,
            **(producer_options or {}))
        self.producer.init_transactions()  # fences an earlier publisher, aborts its txn
        self.position = last_committed_position(bootstrap, topic)

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
        try:
            for note in notes:
                key, value, headers = encode(self.ledger.record_of(note))
                self.producer.send(self.topic, key=key, value=value, headers=headers)
            self.producer.commit_transaction()
        except BaseException:
            self.producer.abort_transaction()
            raise
        self.position = notes[-1].id

    def follow(self, stop: threading.Event, interval: float = 0.5,
               progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while not stop.is_set():
            total += self.publish_pending(progress).published
            stop.wait(interval)
        return total

    def close(self) -> None:
        self.producer.close()
