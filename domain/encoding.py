"""How a ledger event is written in the store: the library's own JSON, written faster.

The library's transcoder sends every value through the stdlib json encoder, and on
reading calls a Python hook for every JSON object. A ledger event's state is plain JSON
but for its timestamp (the envelope and payload are built from JSON-mode dumps), so
orjson writes and reads it and only the timestamp is converted, as the library's
DatetimeAsISO transcoding would. The bytes are the library's (tests/test_encoding.py
compares them on a simulated history), so a store written by either stays verifiable
byte for byte (Ledger.checked_record). Snapshots, ciphered or compressed stores, and
any other event class keep the library's path.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

from domain.compression import undecompressed
from domain.streams import Stream

# A datetime, dataclass or str subclass would reach the library's transcodings (or its
# refusal) there; here it reaches _refuse, so no value is ever written differently.
_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS)
_DATETIME = "datetime_iso"  # the name of eventsourcing's DatetimeAsISO transcoding


def _refuse(value: object) -> None:
    raise TypeError(f"a ledger event holds a {type(value).__name__}, which is not plain "
                    "JSON; give it a transcoding or keep it out of the payload")


class LedgerMapper(Mapper[UUID]):
    def _fast(self, cls: type) -> bool:
        return (self.cipher is None and self.compressor is None
                and issubclass(cls, Stream.Event) and getattr(cls, "class_version", 1) == 1)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        if not self._fast(cls):
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        state["timestamp"] = {"_type_": _DATETIME, "_data_": state["timestamp"].isoformat()}
        return StoredEvent(originator_id=originator_id, originator_version=originator_version,
                           topic=get_topic(cls),
                           state=orjson.dumps(state, default=_refuse, option=_OPTIONS))

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        if not self._fast(cls):
            return super().to_domain_event(stored_event)
        try:
            state = orjson.loads(stored_event.state)
            stamp = state["timestamp"]
            state["timestamp"] = datetime.fromisoformat(stamp["_data_"]) \
                if stamp["_type_"] == _DATETIME else stamp
        except Exception as error:
            why = ("its row is a zstd frame that does not decompress (altered, or written "
                   "with a dictionary not in domain/data)"
                   if undecompressed(stored_event.state) else str(error))
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic "
                f"'{stored_event.topic}', originator_id '{stored_event.originator_id}' and "
                f"originator_version {stored_event.originator_version}: {why}") from error
        convert = find_id_convertor(cls, cast(Hashable, type(stored_event.originator_id)))
        state["originator_id"] = convert(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


MAPPER_TOPIC = "domain.encoding:LedgerMapper"
