"""Ledger digests, the way QLDB's worked: one hash that commits to the whole history.

A running digest over the store's global order (invariant 6 of DESIGN.md):

    digest_0 = "0" * 64
    digest_p = sha256(digest_{p-1} + ":" + str(position) + ":" + event_hash)   (hex)

folded over every event in position order (positions need not be contiguous). A digest
record is ``{"position": P, "digest": hex, "events": n, "at": UTC ISO 8601,
"topic": ...}``: the digest after the n events up to and including position P.

An auditor keeps a digest record (``sijil digest``, or one the publisher wrote to
``sijil.digests.v1``); later, ``sijil verify --digest FILE`` recomputes the digest of the
store up to P. Any event at or before P altered, dropped, inserted or reordered since —
even one whose hash chain was rewritten consistently — gives another digest; events
appended after P do not change it.

Here `event_hash` is the hash an event's content gives it, recomputed from the stored
bytes (chain_hash of the record without `hash` and `position`), not the `hash` field it
claims: an altered payload under its old hash still changes the digest. For an untouched
event both are equal, which is why the publisher (consumers/publisher.py, which writes
digest records with the events they cover) can fold the field it publishes. A stored
event that is not byte-exactly what the ledger wrote folds a marker no event hash can
equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import Notification

from consumers.publisher import RunningDigest, read_digest_records
from domain.chain import chain_hash, hashed_body
from domain.ledger import Ledger

Record = dict[str, Any]

__all__ = ["RunningDigest", "check_digest", "checked_records", "compute_digest",
           "event_hash", "load_digest", "read_digest_records"]


def checked_records(ledger: Ledger, start: int = 0, stop: int | None = None,
                    page: int = 5000) -> Iterator[tuple[Notification, Record | Exception]]:
    """The store's log after `start` up to `stop`, in position order, each notification
    with its contract record if its stored bytes are exactly what the ledger wrote, else
    the error that says why not."""
    # Ledger.verify_stream's byte-exact decoding; a public name is preferred once it has one.
    check = ledger.checked_record
    while notes := ledger.recorder.select_notifications(
            start=start, limit=page, stop=stop, inclusive_of_start=False):
        for note in notes:
            try:
                record: Record | Exception = check(note)
            except Exception as error:  # a tampered record may fail in many ways
                record = error
            yield note, record
        start = notes[-1].id


def event_hash(record: Record | Exception, state: bytes = b"") -> str:
    """The hash an event's content gives it; for an undecodable one, a marker."""
    if isinstance(record, Exception):
        return "undecodable:" + hashlib.sha256(state).hexdigest()
    return chain_hash(hashed_body(record))


def compute_digest(ledger: Ledger, up_to_position: int | None = None,
                   topic: str | None = None, page: int = 5000) -> Record:
    """The digest record of the store up to a position (default: all of it).

    The record's position is the one asked for: a kept digest names the position it
    covers, and the store's last event at or before it is what it covers.
    """
    last = ledger.recorder.max_notification_id() or 0
    target = last if up_to_position is None else up_to_position
    digest = RunningDigest()
    for note, record in checked_records(ledger, 0, target, page):
        digest = digest.fold(note.id, event_hash(record, note.state))
    return {**digest.record(topic), "position": target}


def load_digest(path: Path) -> Record:
    """A kept digest record from a file; ValueError says what is wrong with it."""
    try:
        kept = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    if not isinstance(kept, dict):
        raise ValueError(f"{path}: not a digest record (a JSON object)")
    for name, kind in (("position", int), ("digest", str), ("events", int)):
        if not isinstance(kept.get(name), kind) or isinstance(kept.get(name), bool):
            raise ValueError(f"{path}: {name}: missing or not {kind.__name__}")
    return kept


def check_digest(kept: Record, recomputed: Record) -> list[str]:
    """What differs between a kept digest record and the store's at its position."""
    wrong = []
    if recomputed["events"] != kept["events"]:
        wrong.append(f"the store holds {recomputed['events']:,} events up to position "
                     f"{kept['position']:,}, the digest covered {kept['events']:,}")
    if recomputed["digest"] != kept["digest"]:
        wrong.append(f"digest at position {kept['position']:,} is {recomputed['digest']}, "
                     f"the kept one is {kept['digest']}: history up to it has changed")
    return wrong
