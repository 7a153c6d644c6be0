"""The unit of work's second tier: aggregates let go by its cache, kept frozen as bytes.

At F = 1.0 most workers are asked for again only months after their last request (a
renewal, a transfer): of the ten months' 10.7 million asks for a worker, an LRU cache of
100,000 aggregates sent 3.44 million back to the store, and one of two million would
still send 1.52 million (bench/RESULTS.md, "The ingest at F = 1.0"). Each reload reads a
snapshot or the events, pages scattered through a store that this machine keeps cached
for about a minute only; at the 75th minute of F = 1.0 worker loads were a fifth of the
deciding process's time. Frozen, a worker is about 430 bytes instead of 3 KiB of
objects, and thawing it takes about 7 microseconds. The tier is bounded by the memory it
takes (the frozen bytes and each entry's bookkeeping), oldest first out, so that memory
stays a setting, not a consequence of the population.

A stream's state is plain JSON by construction (its folds copy payload fields, which are
JSON); only the library's own attributes (id, timestamps, pending events) are not, and
they are set back on thawing.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from domain.streams import Stream

_LIBRARY = ("_id", "_pending_events", "_created_on", "_modified_on")
# What an entry costs besides its bytes: the tuple, the ordered dict's slot and link, and
# the stream's UUID that the entry keeps alive (measured with tracemalloc: about 280).
ENTRY_BYTES = 280


class Shapes:
    """The attribute names of each shape of state met, numbered: a frozen aggregate
    keeps its shape's number and its values, not the names (a third of the bytes)."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, ...], int] = {}
        self.names: list[tuple[str, ...]] = []

    def number(self, names: tuple[str, ...]) -> int:
        if names not in self.numbers:
            self.numbers[names] = len(self.names)
            self.names.append(names)
        return self.numbers[names]


def freeze(aggregate: Stream, shapes: Shapes) -> bytes:
    """Only an aggregate with nothing pending: its events are the store's to keep."""
    state = vars(aggregate)
    if state["_pending_events"]:
        raise ValueError(f"stream {aggregate.id} has events not yet committed")
    names = tuple(k for k in state if k not in _LIBRARY)
    encoded = orjson.dumps([shapes.number(names), state["_created_on"], state["_modified_on"],
                            *(state[k] for k in names)])
    # Copied to its own size: orjson's bytes keep the buffer it wrote into, about 8 KiB
    # for a 430-byte worker, which at F = 1.0 held 17 GiB after 21 minutes.
    return memoryview(encoded).tobytes()


def thaw(kind: type[Stream], stream_id: UUID, frozen: bytes, shapes: Shapes) -> Stream:
    shape, created_on, modified_on, *values = orjson.loads(frozen)
    aggregate: Stream = object.__new__(kind)
    vars(aggregate).update(zip(shapes.names[shape], values, strict=True), _id=stream_id,
                           _pending_events=[], _created_on=_when(created_on),
                           _modified_on=_when(modified_on))
    return aggregate


def _when(text: Any) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class ColdTier:
    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.size = 0  # what the entries take: their bytes and their bookkeeping
        self.shapes = Shapes()
        self._frozen: OrderedDict[UUID, tuple[type[Stream], bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._frozen)

    def put(self, aggregate: Stream) -> None:
        """One the cache let go: never also here (the unit of work drops a frozen state
        whenever it holds the stream again)."""
        if self.limit_bytes <= 0:
            return
        frozen = freeze(aggregate, self.shapes)
        self._frozen[aggregate.id] = (type(aggregate), frozen)
        self.size += len(frozen) + ENTRY_BYTES
        while self.size > self.limit_bytes:
            _, (_, oldest) = self._frozen.popitem(last=False)
            self.size -= len(oldest) + ENTRY_BYTES

    def take(self, stream_id: UUID) -> Stream | None:
        """The aggregate thawed, and no longer held here (the cache holds it again)."""
        found = self.drop(stream_id)
        return None if found is None else thaw(found[0], stream_id, found[1], self.shapes)

    def drop(self, stream_id: UUID) -> tuple[type[Stream], bytes] | None:
        found = self._frozen.pop(stream_id, None)
        if found is not None:
            self.size -= len(found[1]) + ENTRY_BYTES
        return found

    def clear(self) -> None:
        self._frozen.clear()
        self.size = 0
