"""The subscriber runtime: a consumer group reads the events topic in batches and hands
each event, decoded and upcast, to a handler.

Two kinds of handler, two ways to be exactly-once in effect (invariant 4):
- a SQL handler writes in the transaction that also stores the group's offsets, in its
  own database: a crash before the commit loses both, after it keeps both, so on restart
  the group resumes exactly where its writes end;
- an effect handler (a notifier, anything outside SQL) is idempotent by event id, and
  the group commits its Kafka offsets after the effects.
A record that cannot be decoded, or whose handler still fails after bounded retries,
goes to the dead-letter topic with the reason in its headers; the group goes on.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, cast

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Connection, Engine

from consumers.codec import Undecodable, decode, encode
from consumers.inspection import settled_end_offsets
from consumers.offsets import SqlOffsets
from consumers.topics import dead_letter_topic
from domain.context import iso


@dataclass(frozen=True)
class Delivery:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    record: dict[str, Any]


class SqlHandler(Protocol):
    """Writes through `conn`, inside the transaction that stores the offsets. It may also
    define `committed()` and `rolled_back()`, called after that transaction, to keep an
    in-memory cache in step with what was really written."""

    def handle(self, conn: Connection, deliveries: Sequence[Delivery]) -> None: ...


class EffectHandler(Protocol):
    def handle(self, delivery: Delivery) -> None: ...


@dataclass
class RunStats:
    batches: int = 0
    handled: int = 0
    dead_lettered: int = 0
    alerts_relayed: int = 0


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, continue from the offsets stored with the handler's writes."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self.subscriber.merge is not None:
            self.subscriber.merge.forget([tp.partition for tp in revoked])

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.subscriber.seek_assigned(list(assigned))


class Subscriber:
    def __init__(self, *, bootstrap: str, topic: str, group: str,
                 handler: SqlHandler | EffectHandler, engine: Engine | None = None,
                 max_retries: int = 3, backoff: float = 0.05, batch: int = 2000,
                 ordered: bool = False,
                 consumer_options: dict[str, Any] | None = None) -> None:
        self.topic, self.group, self.bootstrap = topic, group, bootstrap
        # A SQL handler comes with the engine its writes and offsets share.
        self.offsets = SqlOffsets(engine) if engine is not None else None
        self.sql_handler = cast(SqlHandler, handler) if engine is not None else None
        self.effect_handler = cast(EffectHandler, handler) if engine is None else None
        self.max_retries, self.backoff = max_retries, backoff
        self.dlq = dead_letter_topic(topic)
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, isolation_level="read_committed",
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=batch,
            **{**(MERGE_CONSUMER_OPTIONS if ordered else {}), **(consumer_options or {})})
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self.consumer.subscribe([topic], listener=_SeekToStored(self))
        self.stats = RunStats()
        self._last_error = ""
        self.merge = PositionMerge(self.consumer, topic) if ordered else None

    def seek_assigned(self, assigned: list[TopicPartition]) -> None:
        if self.offsets is None:
            return
        stored = self.offsets.load(self.group, self.topic)
        for tp in assigned:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                self.consumer.seek_to_beginning(tp)

    # -- the loop -------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, *, until_caught_up: bool = False,
            poll_ms: int = 500) -> RunStats:
        stop = stop or threading.Event()
        while not stop.is_set():
            polled = self.consumer.poll(timeout_ms=poll_ms)
            if polled:
                self._process(polled)
            elif until_caught_up and self._caught_up():
                break
        return self.stats

    def _caught_up(self) -> bool:
        """Every partition of the topic is ours and read to its end. While a dead
        member's session lasts, the group gives us only some partitions: not caught up."""
        assigned = list(self.consumer.assignment())
        partitions = self.consumer.partitions_for_topic(self.topic) or set()
        if not assigned or {tp.partition for tp in assigned} != set(partitions):
            return False
        if self.merge is not None and self.merge.pending():
            self._process({})
            return False
        ends = self.consumer.end_offsets(assigned)
        if not all(self.consumer.position(tp) >= ends[tp] for tp in assigned):
            return False
        # at the last stable offset: caught up only once no commit marker is on its way
        ends = settled_end_offsets(self.consumer, self.bootstrap, assigned)
        return all(self.consumer.position(tp) >= ends[tp] for tp in assigned)

    def _decoded(self, polled: dict[TopicPartition, list[Any]]
                 ) -> tuple[list[Delivery], dict[int, int]]:
        good: list[Delivery] = []
        nexts: dict[int, int] = {}
        for tp, messages in polled.items():
            for m in messages:
                try:
                    good.append(Delivery(tp.topic, tp.partition, m.offset, m.key,
                                         decode(m.value, m.headers)))
                except Undecodable as error:
                    self._dead_letter(m, tp, str(error))
            nexts[tp.partition] = messages[-1].offset + 1
        self.producer.flush()
        return good, nexts

    def _process(self, polled: dict[TopicPartition, list[Any]]) -> None:
        if self.merge is not None:
            polled = self.merge.admit(polled)
        good, nexts = self._decoded(polled)
        if self.merge is not None:
            good, nexts = self.merge.release(good)
            if not good and not nexts:
                return
        if self.offsets is not None:
            self._handle_sql(good, nexts)
        else:
            self._handle_effects(good)
        self.consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                              for p, o in nexts.items()})
        self.stats.batches += 1

    # -- SQL handlers: writes and offsets in one transaction --------------------------
    def _handle_sql(self, good: list[Delivery], nexts: dict[int, int]) -> None:
        if self._attempt(partial(self._sql_transaction, good, nexts)):
            self.stats.handled += len(good)
            return
        for delivery in good:  # the batch keeps failing: find the culprits one by one
            one = {delivery.partition: delivery.offset + 1}
            if self._attempt(partial(self._sql_transaction, [delivery], one)):
                self.stats.handled += 1
            else:
                self._dead_letter_delivery(delivery, self._last_error)
                self._sql_transaction([], one)
        self._sql_transaction([], nexts)

    def _sql_transaction(self, deliveries: Sequence[Delivery], nexts: dict[int, int]) -> None:
        """Writes and offsets together; a handler that caches rows hears the outcome."""
        assert self.offsets is not None
        try:
            with self.offsets.engine.begin() as conn:
                if deliveries and self.sql_handler is not None:
                    self.sql_handler.handle(conn, deliveries)
                self.offsets.save(conn, self.group, self.topic, nexts)
        except Exception:
            getattr(self.sql_handler, "rolled_back", lambda: None)()
            raise
        getattr(self.sql_handler, "committed", lambda: None)()

    # -- effect handlers: effects first, offsets after -------------------------------
    def _handle_effects(self, good: list[Delivery]) -> None:
        handler = self.effect_handler
        assert handler is not None
        for delivery in good:
            if self._attempt(partial(handler.handle, delivery)):
                self.stats.handled += 1
            else:
                self._dead_letter_delivery(delivery, self._last_error)
        self.producer.flush()

    def _attempt(self, work: Callable[[], None]) -> bool:
        for attempt in range(self.max_retries):
            try:
                work()
                return True
            except Exception as error:  # a handler may fail in any way; we retry
                self._last_error = f"{type(error).__name__}: {error}"
                time.sleep(self.backoff * (2 ** attempt))
        return False

    # -- dead letters ---------------------------------------------------------------
    def _dead_letter(self, message: Any, tp: TopicPartition, reason: str) -> None:
        self._send_dead_letter(message.key, message.value, list(message.headers or []),
                               f"{tp.topic}/{tp.partition}/{message.offset}", reason)

    def _dead_letter_delivery(self, delivery: Delivery, reason: str) -> None:
        key, value, headers = encode(delivery.record)
        self._send_dead_letter(key, value, headers,
                               f"{delivery.topic}/{delivery.partition}/{delivery.offset}",
                               reason)
        self.producer.flush()

    def _send_dead_letter(self, key: bytes | None, value: bytes | None,
                          headers: list[tuple[str, bytes]], source: str, reason: str) -> None:
        """The original record, with why and where it failed in `dlq.*` headers."""
        headers = [*headers, ("dlq.group", self.group.encode()),
                   ("dlq.error", reason.encode()), ("dlq.source", source.encode()),
                   ("dlq.at", iso(datetime.now(UTC)).encode())]
        self.producer.send(self.dlq, key=key, value=value, headers=headers)
        self.stats.dead_lettered += 1

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


# PositionMerge never pauses a partition: kafka-python 3.0.12's fetcher parks the parsed,
# not yet returned rest of a fetch of a partition paused after a poll, and puts it back
# after `resume()` only if its in-line slot is empty (`_next_partition_records is None`)
# — in steady state it holds a drained batch, not None — while it sends no fetch for a
# partition with parked records; `seek()` and `assign()` do not clear them. So a resumed
# partition got nothing from any later fetch and the merge, waiting for it, stalled for
# good: tests/test_merge_liveness.py, and very likely the F = 0.1 rebuild of
# bench/scale.py that was first blamed on incremental fetch sessions (KIP-227). Those
# stay off for these consumers: full fetch requests, six partitions long, cost nothing
# measurable.
MERGE_CONSUMER_OPTIONS: dict[str, Any] = {"enable_incremental_fetch_sessions": False}


class PositionMerge:
    """Release records across partitions in the store's global order (their `position`).

    Keys are establishments, but a worker's stream moves between establishments with a
    service transfer, so its events sit in more than one partition. Readers that fold
    streams — the projections — take records in position order: a record is released
    once every other partition has a later record waiting or has nothing left to read.
    That holds because the publisher writes in position order, transaction by
    transaction: once position p is readable, every earlier position is too.

    A partition that runs ahead buffers; memory stays bounded because `admit` keeps at
    most BUFFER_LIMIT records of a partition and seeks it back to the first it refused,
    to be read again once the merge has released from it. (Not `pause()`, which loses a
    partition for good with kafka-python 3.0.12: see MERGE_CONSUMER_OPTIONS.)
    """

    BUFFER_LIMIT = 50_000  # buffered records in one partition before it takes no more

    def __init__(self, consumer: KafkaConsumer, topic: str) -> None:
        self.consumer, self.topic = consumer, topic
        self.buffers: dict[int, deque[Delivery]] = {}
        self.ends: dict[int, int] = {}
        self.refused = 0  # records polled but not kept, to be fetched again: the bound's cost
        self._refreshed = False

    def pending(self) -> bool:
        return any(self.buffers.values())

    def forget(self, partitions: list[int]) -> None:
        for p in partitions:
            self.buffers.pop(p, None)

    def admit(self, polled: dict[TopicPartition, list[Any]]
              ) -> dict[TopicPartition, list[Any]]:
        """Of a poll, the records each partition's buffer has room for. A partition with
        records refused is sought back to the first of them, so its position stays the
        offset after the last record kept: none is skipped, and what the handler is told
        to commit stays right. Call before decoding, so a refused record is neither
        decoded nor dead-lettered twice."""
        kept: dict[TopicPartition, list[Any]] = {}
        for tp, messages in polled.items():
            room = max(0, self.BUFFER_LIMIT - len(self.buffers.get(tp.partition, ())))
            if room < len(messages):
                self.consumer.seek(tp, messages[room].offset)
                self.refused += len(messages) - room
            if room and messages:
                kept[tp] = messages[:room]
        return kept

    def release(self, good: list[Delivery]) -> tuple[list[Delivery], dict[int, int]]:
        for d in good:
            self.buffers.setdefault(d.partition, deque()).append(d)
        self._refreshed = False  # end offsets are asked at most once a release
        out: list[Delivery] = []
        if all(self.buffers.get(tp.partition) or self._drained(tp)
               for tp in self.consumer.assignment()):
            heads = [(b[0].record["position"], p) for p, b in self.buffers.items() if b]
            heapq.heapify(heads)
            while heads:
                _, p = heapq.heappop(heads)
                buffer = self.buffers[p]
                out.append(buffer.popleft())
                if buffer:
                    heapq.heappush(heads, (buffer[0].record["position"], p))
                elif not self._drained(TopicPartition(self.topic, p)):
                    break  # its next record, unread yet, may come before the others
        return out, self._next_offsets(out)

    def _drained(self, tp: TopicPartition) -> bool:
        """Nothing left to read in this partition (the end is re-asked when reached)."""
        position = self.consumer.position(tp)
        if position < self.ends.get(tp.partition, -1):
            return False
        if not self._refreshed:
            assigned = list(self.consumer.assignment())
            self.ends.update({t.partition: o for t, o in
                              self.consumer.end_offsets(assigned).items()})
            self._refreshed = True
        return bool(position >= self.ends.get(tp.partition, 0))

    def _next_offsets(self, released: list[Delivery]) -> dict[int, int]:
        """Per partition, the first offset not yet handed to the handler."""
        touched = {d.partition for d in released}
        nexts = {}
        for p in touched:
            buffer = self.buffers.get(p)
            nexts[p] = (buffer[0].offset if buffer
                        else self.consumer.position(TopicPartition(self.topic, p)))
        return nexts
