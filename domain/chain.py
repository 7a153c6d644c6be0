"""The per-stream hash chain: each event's hash covers its content and its predecessor's.

Invariant 6 of DESIGN.md: an altered, dropped or reordered event is detected. The
canonical form is JSON with sorted keys, no whitespace, UTF-8 unescaped — reproducible
in any language — and event payloads carry no floats so that no reader rounds.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import orjson

GENESIS: Final[str] = "0" * 64
# Everything on the contract but the hash itself and the store-assigned position.
UNHASHED: Final[frozenset[str]] = frozenset({"hash", "position"})


def canonical(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def chain_hash(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical body; `prev_hash` is part of the body."""
    return hashlib.sha256(canonical(body)).hexdigest()


def hashed_body(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in UNHASHED}


def verify_record(record: dict[str, Any], expected_prev: str) -> str | None:
    """Why this record breaks its chain, or None when it holds."""
    if record.get("prev_hash") != expected_prev:
        return f"prev_hash {record.get('prev_hash')!r} is not the previous hash {expected_prev!r}"
    if chain_hash(hashed_body(record)) != record.get("hash"):
        return "hash does not match the event's content"
    return None
