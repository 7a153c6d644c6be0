"""The event on Kafka: one JSON object a record, keyed by establishment, with headers.

This is the wire half of the contract in DESIGN.md and docs/contract.md; the record's
fields come from domain.envelope.contract_record. Keys are the establishment id, so an
establishment's events share a partition and keep their order; events that belong to no
establishment (an account's logins) are keyed by their stream id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from domain.upcasting import UnknownEvent, upcast

CONTENT_TYPE: Final[str] = "application/json"
HEADERS: Final[tuple[str, ...]] = ("event_type", "schema_version", "event_id", "content_type")

Headers = list[tuple[str, bytes]]


class Undecodable(ValueError):
    """A record no reader can use: not JSON, not an event, or of an unknown type."""


def key_of(record: dict[str, Any]) -> bytes:
    return str(record["establishment_id"] or record["stream"]).encode()


def encode(record: dict[str, Any]) -> tuple[bytes, bytes, Headers]:
    headers = [("event_type", record["event_type"].encode()),
               ("schema_version", str(record["schema_version"]).encode()),
               ("event_id", record["event_id"].encode()),
               ("content_type", CONTENT_TYPE.encode())]
    return key_of(record), orjson.dumps(record), headers


def decode(value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()) -> dict[str, Any]:
    """The record, upcast to the current shape of its event type."""
    if value is None:
        raise Undecodable("value: a tombstone is not an event")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise Undecodable(f"value: not JSON ({error})") from None
    if not isinstance(record, dict):
        raise Undecodable("value: not a JSON object")
    declared = dict(headers).get("event_type")
    if declared is not None and declared.decode(errors="replace") != record.get("event_type"):
        raise Undecodable("headers.event_type: differs from the value's event_type")
    try:
        return upcast(record)
    except UnknownEvent as error:
        raise Undecodable(str(error)) from None
