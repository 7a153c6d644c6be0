"""A unit of work over the event store: aggregates loaded once, events saved together.

Ingest decides many requests against the same in-memory aggregates and saves them in
one transaction; since each decision sees exactly the state that the previous ones
left, the outcome equals deciding and saving one request at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from domain.cold_tier import ColdTier
from domain.known_streams import KnownStreams
from domain.streams import Stream

S = TypeVar("S", bound=Stream)


class EventStore(Protocol):
    def load(self, stream_id: UUID) -> Stream | None: ...

    def commit(self, events: list[Stream.Event], aggregates: list[Stream]) -> None: ...


class UnitOfWork:
    def __init__(self, store: EventStore, clock: Callable[[], datetime],
                 cache_size: int = 100_000,
                 stays_loaded: tuple[type[Stream], ...] = (),
                 known: KnownStreams | None = None, cold_bytes: int = 0) -> None:
        self.store = store
        self.known = known  # streams the store may hold; None: ask it of every stream
        self.clock = clock
        self.cache_size = cache_size
        self.cache: OrderedDict[UUID, Stream | None] = OrderedDict()
        self.cold = ColdTier(cold_bytes)  # what the cache lets go, frozen; 0: nothing
        self.stays_loaded = frozenset(stays_loaded)
        self.kept: dict[UUID, Stream] = {}  # of the kinds that stay loaded: never evicted
        self.pending: list[Stream.Event] = []
        self.touched: dict[UUID, Stream] = {}

    def get(self, kind: type[S], stream_id: UUID) -> S | None:
        found: Stream | None = self.kept.get(stream_id)
        if found is None:
            if stream_id in self.cache:
                self.cache.move_to_end(stream_id)
                found = self.cache[stream_id]
            else:
                found = self._load(stream_id)
                self._remember(stream_id, found)
        if found is not None and not isinstance(found, kind):
            raise TypeError(f"stream {stream_id} holds a {type(found).__name__}")
        return found

    def _load(self, stream_id: UUID) -> Stream | None:
        thawed = self.cold.take(stream_id)
        if thawed is not None:
            return thawed
        if self.known is not None and not self.known.may_hold(stream_id):
            return None  # never opened: nothing to ask the store
        return self.store.load(stream_id)

    def open(self, kind: type[S], stream_id: UUID, envelope: dict[str, Any]) -> S:
        aggregate: S = kind.open(stream_id, envelope, self.clock())
        if self.known is not None:
            self.known.add(stream_id)
        self._take_pending(aggregate)
        self._remember(stream_id, aggregate)
        return aggregate

    def append(self, aggregate: Stream, envelope: dict[str, Any]) -> Stream.Event:
        aggregate.append(envelope, self.clock())
        return self._take_pending(aggregate)

    def commit(self) -> None:
        if self.pending:
            try:
                self.store.commit(self.pending, list(self.touched.values()))
            except Exception:
                self.forget()
                raise
        self.pending = []
        self.touched = {}

    def forget(self) -> None:
        """After a failed commit, drop every aggregate held: reload them next time. Not
        only this batch's: with writes behind (domain/write_behind.py) the failure may be
        an earlier batch's, and later decisions were made on top of it."""
        self.cache.clear()
        self.cold.clear()
        self.kept.clear()
        self.pending = []
        self.touched = {}

    def _take_pending(self, aggregate: Stream) -> Stream.Event:
        taken = aggregate.collect_events()
        self.pending.extend(taken)  # type: ignore[arg-type]
        self.touched[aggregate.id] = aggregate
        if self._held(aggregate.id) is not aggregate:
            # A decision held it while its own loads pushed it out of a small cache: the
            # next decision must see these events, not the store's older version.
            self._remember(aggregate.id, aggregate)
        return taken[-1]  # type: ignore[return-value]

    def _held(self, stream_id: UUID) -> Stream | None:
        return self.kept[stream_id] if stream_id in self.kept else self.cache.get(stream_id)

    def _remember(self, stream_id: UUID, aggregate: Stream | None) -> None:
        if aggregate is not None and type(aggregate) in self.stays_loaded:
            self.kept[stream_id] = aggregate
            self.cache.pop(stream_id, None)
            return
        self.cold.drop(stream_id)  # an older frozen state would be stale
        self.cache[stream_id] = aggregate
        self.cache.move_to_end(stream_id)
        while len(self.cache) > self.cache_size:
            oldest, _ = next(iter(self.cache.items()))
            if oldest in self.touched:
                break
            _, evicted = self.cache.popitem(last=False)
            if evicted is not None:
                self.cold.put(evicted)
