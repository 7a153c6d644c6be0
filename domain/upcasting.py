"""Upcasters: how a reader turns an older event shape into the current one.

History is never edited (invariant 1): when an event's shape changes it gets a new
`schema_version`, and an upcaster here lifts old records on read, for the store's
readers and Kafka's alike. Version 1 is the first shape of every event type, so the
table is empty today; it exists so that the first change has a place to go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from domain.events import EVENT_TYPES

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# (event_type, from_version) -> function returning the record at from_version + 1
UPCASTERS: Final[dict[tuple[str, int], Upcaster]] = {}


class UnknownEvent(ValueError):
    """An event type or version this reader cannot understand."""


def upcast(record: dict[str, Any]) -> dict[str, Any]:
    event_type = record.get("event_type")
    if event_type not in EVENT_TYPES:
        raise UnknownEvent(f"event_type: unknown event type {event_type!r}")
    current = EVENT_TYPES[event_type].schema_version
    version = int(record.get("schema_version", 0))
    while version < current:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnknownEvent(f"schema_version: no upcaster from {event_type} v{version}")
        record = step(record)
        version = int(record["schema_version"])
    if version > current:
        raise UnknownEvent(f"schema_version: {event_type} v{version} is newer than this "
                           f"reader (v{current})")
    return record
