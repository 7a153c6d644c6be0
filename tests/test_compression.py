"""The event store's rows compressed (domain/compression.py): nothing a reader sees
changes, the rows shrink, and a store may mix compressed and plain rows."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from domain.compression import MAGIC, compress, decompress
from domain.ingest import ingest
from domain.ledger import Ledger
from replay.verify import verify_store
from simulator import simulate
from simulator.dictionary import history_states, train
from tests.test_ledger_properties import all_records, counting_clock

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=5),
    max_leaves=30)


@given(st.binary(max_size=3000))
def test_any_bytes_come_back_as_they_were(data: bytes) -> None:
    assert decompress(compress(data)) == data


@given(JSONISH)
@settings(max_examples=200)
def test_any_json_comes_back_as_it_was(value: Any) -> None:
    data = orjson.dumps(value)
    frame = compress(data)
    assert frame[:4] == MAGIC
    assert decompress(frame) == data
    assert decompress(data) == data  # a plain row is read as it is


@given(st.data())
def test_a_changed_byte_of_a_frame_never_reads_as_other_json(data: st.DataObject) -> None:
    """The frame's checksum: an altered row does not decompress to other content; it
    comes back as the frame, which the mapper refuses naming the event."""
    original = orjson.dumps({"event_type": "worker.joined", "payload": {"wage_sar": 8100}})
    frame = bytearray(compress(original))
    i = data.draw(st.integers(4, len(frame) - 1), label="byte")
    frame[i] ^= data.draw(st.integers(1, 255), label="xor")
    read = decompress(bytes(frame))
    assert read == original or read == bytes(frame)


@pytest.fixture(scope="module")
def history() -> bytes:
    out = io.BytesIO()
    simulate(establishments=12, months=2, seed=5, out=out, leaks=1)
    return out.getvalue()


def _ingested(tmp: Path, name: str, history: bytes, monkeypatch: pytest.MonkeyPatch,
              compression: str) -> Ledger:
    monkeypatch.setenv("SIJIL_STORE_COMPRESSION", compression)
    ledger = Ledger(f"sqlite:///{tmp}/{name}.sqlite", clock=counting_clock())
    ingest(ledger, history.splitlines(), writer_after=1)  # the writer process too
    return ledger


def _rows(ledger: Ledger) -> list[bytes]:
    engine = create_engine(ledger.env["SQLALCHEMY_URL"])
    with engine.connect() as conn:
        rows = [bytes(r[0]) for r in conn.execute(text(
            "SELECT state FROM sijil_events ORDER BY id"))]
    engine.dispose()
    return rows


def test_a_compressed_store_reads_as_a_plain_one(tmp_path: Path, history: bytes,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _ingested(tmp_path, "plain", history, monkeypatch, "none")
    packed = _ingested(tmp_path, "packed", history, monkeypatch, "zstd")
    plain_rows, packed_rows = _rows(plain), _rows(packed)
    assert all(r[:1] == b"{" for r in plain_rows)
    assert all(r[:4] == MAGIC for r in packed_rows)
    assert [decompress(r) for r in packed_rows] == plain_rows  # the same bytes, written
    assert all_records(packed) == all_records(plain)
    assert sum(map(len, packed_rows)) * 3 < sum(map(len, plain_rows)), "at least 3x"
    assert verify_store(packed).ok


def test_a_store_may_mix_compressed_and_plain_rows(tmp_path: Path, history: bytes,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Compression turned on for a store written without it (or off again later)."""
    lines = history.splitlines()
    url, clock = f"sqlite:///{tmp_path}/mixed.sqlite", counting_clock()
    for compression, part in (("none", lines[:len(lines) // 2]),
                              ("zstd", lines[len(lines) // 2:])):
        monkeypatch.setenv("SIJIL_STORE_COMPRESSION", compression)
        ledger = Ledger(url, clock=clock)  # one clock: the same times as the reference's
        ingest(ledger, part)
    reference = _ingested(tmp_path, "reference", history, monkeypatch, "none")
    kinds = {r[:4] == MAGIC for r in _rows(ledger)}
    assert kinds == {True, False}
    assert [r["hash"] for r in all_records(ledger)] == \
        [r["hash"] for r in all_records(reference)]
    assert verify_store(ledger).ok


def test_an_altered_compressed_row_is_reported_not_raised(
        tmp_path: Path, history: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = _ingested(tmp_path, "altered", history, monkeypatch, "zstd")
    target = all_records(ledger)[40]
    engine = create_engine(ledger.env["SQLALCHEMY_URL"])
    with engine.begin() as conn:
        where = {"p": target["position"]}
        frame = bytearray(conn.execute(text("SELECT state FROM sijil_events WHERE id = :p"),
                                       where).scalar_one())
        frame[len(frame) // 2] ^= 0x20
        conn.execute(text("UPDATE sijil_events SET state = :s WHERE id = :p"),
                     {**where, "s": bytes(frame)})
    engine.dispose()
    problems = Ledger(ledger.env["SQLALCHEMY_URL"]).verify_stream(UUID(target["stream"]))
    assert [p.version for p in problems][:1] == [target["stream_version"]]
    assert not verify_store(ledger).ok


def test_a_dictionary_trained_on_a_history_compresses_it() -> None:
    """The trainer behind domain/data's dictionary (simulator/dictionary.py), small."""
    states = history_states(establishments=6, months=1)
    assert states and all(s[:1] == b"{" for s in states)
    trained = zstandard.ZstdCompressionDict(train(states, size=4096))
    with_it = zstandard.ZstdCompressor(dict_data=trained)
    without = zstandard.ZstdCompressor()
    assert sum(len(with_it.compress(s)) for s in states) * 2 < \
        sum(len(without.compress(s)) for s in states)
