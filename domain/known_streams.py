"""The streams the store may hold: a Bloom filter asked before a load at ingest.

Most of the loads that find nothing are of workers joining for the first time (3.97
million at F = 1.0): each asks the store for a snapshot and for events, two lookups at
random places of a store far larger than what the machine keeps cached, and at F = 1.0's
29th minute they were 23 % of the deciding process's time (bench/RESULTS.md). A stream
the filter was never told of is not in the store, so its load is answered without
asking; one it may hold is loaded as before (about 1 % of the absent ones, by the
sizing). This holds while the unit of work is the store's only writer, which ingest
already assumes for its cached aggregates; a stream another process opened meanwhile
would be opened twice, and the store refuses the second version 1 (nothing is lost).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from uuid import UUID

# Streams the filter is sized for: ten months of the ministry open about 4.6 million
# (workers, establishments, accounts, refusals' own); three years fit at 1 % false
# positives in 18 MiB.
CAPACITY = 16_000_000
ERROR = 0.01
_LOW = (1 << 64) - 1


class KnownStreams:
    def __init__(self, capacity: int = CAPACITY, error: float = ERROR) -> None:
        if capacity < 1 or not 0 < error < 1:
            raise ValueError("capacity must be at least 1 and error between 0 and 1")
        self.size = max(64, math.ceil(-capacity * math.log(error) / math.log(2) ** 2))
        self.hashes = max(1, round(self.size / capacity * math.log(2)))
        self.bits = bytearray((self.size + 7) // 8)

    @classmethod
    def of(cls, streams: Iterable[UUID], capacity: int = CAPACITY) -> KnownStreams:
        known = cls(capacity)
        for stream_id in streams:
            known.add(stream_id)
        return known

    def _positions(self, stream_id: UUID) -> Iterator[int]:
        # Stream ids are name-based UUIDs (uuid5): their bits are already spread, so two
        # halves of them make the double hashing's two hashes.
        value = stream_id.int
        first, step = value & _LOW, (value >> 64) | 1
        return ((first + i * step) % self.size for i in range(self.hashes))

    def add(self, stream_id: UUID) -> None:
        for p in self._positions(stream_id):
            self.bits[p >> 3] |= 1 << (p & 7)

    def may_hold(self, stream_id: UUID) -> bool:
        """False only for a stream never added."""
        return all(self.bits[p >> 3] >> (p & 7) & 1 for p in self._positions(stream_id))
