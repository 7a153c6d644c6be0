"""An event as the contract of DESIGN.md shows it: what Kafka carries and auditors verify."""

from __future__ import annotations

from typing import Any

from domain.chain import hashed_body, verify_record
from domain.context import iso
from domain.streams import Stream


def contract_record(event: Stream.Event, position: int | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "stream": str(event.originator_id),
        "stream_version": event.originator_version,
        "establishment_id": event.establishment_id,
        "occurred_at": event.occurred_at,
        "recorded_at": iso(event.timestamp),
        "request": event.request,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
    if position is not None:
        record["position"] = position
    return record


def problem_with(event: Stream.Event, expected_prev: str) -> str | None:
    return verify_record(contract_record(event), expected_prev)


__all__ = ["contract_record", "hashed_body", "problem_with"]
