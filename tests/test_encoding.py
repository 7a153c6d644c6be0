"""The ledger's event encoding (domain/encoding.py) writes and reads exactly what the
eventsourcing library's JSON transcoder would, so stores written by either verify byte
for byte; and event ids are the uuid5 they are documented to be."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from domain.encoding import LedgerMapper
from domain.identifiers import SIJIL_NAMESPACE, event_id
from domain.ingest import ingest
from tests.strategies import START, bootstrap, histories, request
from tests.test_ledger_properties import FAST, fresh_ledger, lines


def library_mapper() -> Mapper[uuid.UUID]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


@FAST
@given(history=histories())
def test_stored_bytes_are_the_library_encoding(tmp_path: Path,
                                               history: list[dict[str, Any]]) -> None:
    ledger = fresh_ledger(tmp_path)
    assert isinstance(ledger.mapper, LedgerMapper)
    ingest(ledger, lines(history))
    library = library_mapper()
    notes = ledger.recorder.select_notifications(start=1, limit=10_000)
    assert notes
    for note in notes:
        ours, theirs = ledger.mapper.to_domain_event(note), library.to_domain_event(note)
        assert type(ours) is type(theirs) and vars(ours) == vars(theirs)
        assert library.to_stored_event(ours).state == note.state
        assert ledger.mapper.to_stored_event(theirs).state == note.state


def test_a_value_that_is_not_plain_json_is_refused(tmp_path: Path) -> None:
    """The library would refuse a date too; orjson alone would write it as a string."""
    ledger = fresh_ledger(tmp_path)
    service, payload, who = bootstrap()[0]
    ingest(ledger, lines([request(0, START, service, payload, actor=who["actor"])]))
    note = ledger.recorder.select_notifications(start=1, limit=1)[0]
    event = ledger.mapper.to_domain_event(note)
    event.__dict__["payload"] = {"day": date(2025, 1, 1)}
    with pytest.raises(TypeError, match="date"):
        ledger.mapper.to_stored_event(event)


@given(stream=st.uuids(), version=st.integers(1, 10**9))
def test_event_id_is_the_documented_uuid5(stream: uuid.UUID, version: int) -> None:
    assert event_id(stream, version) == str(
        uuid.uuid5(SIJIL_NAMESPACE, f"event:{stream}:{version}"))
