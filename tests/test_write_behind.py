"""Ingest through the writer process (domain/write_behind.py) records exactly what
writing in line records, and a failed write stops every write after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ingest import ingest
from domain.ledger import Ledger
from domain.requests import parse_request
from domain.write_behind import WriteBehind, WriteFailed
from tests.strategies import histories
from tests.test_ledger_properties import FAST, all_records, fresh_ledger, lines


# Each example starts a writer process (about a second): few examples, small caches (a
# decision holds up to about six streams), so that streams still being written are read
# back often.
@settings(FAST, max_examples=8)
@given(history=histories(), batch=st.integers(1, 6), cache=st.integers(6, 12))
def test_the_writer_process_records_what_writing_in_line_records(
        tmp_path: Path, history: list[dict[str, Any]], batch: int, cache: int) -> None:
    behind, in_line = fresh_ledger(tmp_path), fresh_ledger(tmp_path)
    a = ingest(behind, lines(history), batch_size=batch, cache_size=cache, writer_after=0)
    b = ingest(in_line, lines(history), batch_size=batch, cache_size=cache,
               writer_after=10**9)
    assert (a.accepted, a.refused, a.rules) == (b.accepted, b.refused, b.rules)
    assert all_records(behind) == all_records(in_line)


def _decided_batches(ledger: Ledger, history: list[dict[str, Any]]) -> list[Any]:
    uow = ledger.unit_of_work()
    batches = []
    for line in lines(history):
        ledger.decide(uow, parse_request(line))
        batches.append((list(uow.pending), list(uow.touched.values())))
        uow.pending, uow.touched = [], {}
    return batches


@settings(FAST, max_examples=3)
@given(history=histories())
def test_a_failed_write_is_raised_and_nothing_after_it_is_written(
        tmp_path: Path, history: list[dict[str, Any]]) -> None:
    ledger = fresh_ledger(tmp_path)
    batches = [b for b in _decided_batches(ledger, history) if b[0]]
    with pytest.raises(WriteFailed, match="IntegrityError"), \
            WriteBehind(ledger, start_after=0) as store:
        store.commit(*batches[0])
        store.commit(*batches[0])  # the same stream versions again: the store refuses
        for later in batches[1:]:  # raised here once the refusal is back, or dropped
            store.commit(*later)
        store.flush()
    assert len(all_records(ledger)) == len(batches[0][0])


def test_a_store_told_to_keep_pages_keeps_them_on_every_connection(tmp_path: Path) -> None:
    """The writer process's connections, those opened before the call included (the
    ledger opens one to create its tables)."""
    ledger = fresh_ledger(tmp_path)
    ledger.keep_pages(64)
    assert ledger.snapshots is not None
    for recorder in (ledger.recorder, ledger.snapshots.recorder):
        with recorder.datastore.engine.connect() as conn:  # type: ignore[attr-defined]
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -64 * 1024
