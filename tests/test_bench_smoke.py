"""The benchmarks still run: tiny sizes, results written to a temporary folder.

Only that they work and write sensible figures is checked, never how fast: speed is
measured in bench/, not in a timed test (the machine running the tests may be busy).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from bench import ingest, ingest_memory, snapshots
from domain.envelope import contract_record
from domain.events import validate_record
from domain.ledger import Ledger

RUNNER = CliRunner()


def invoke(app: Any, args: list[str], out: Path) -> dict[str, Any]:
    result = RUNNER.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    figures: dict[str, Any] = orjson.loads(out.read_bytes())
    for key in ("date", "machine", "python", "command"):
        assert figures[key], key
    assert figures["machine"]["cores"] >= 1 and figures["machine"]["memory_gib"] > 0
    return figures


def test_the_ingest_benchmark_runs_and_writes_positive_rates(tmp_path: Path) -> None:
    figures = invoke(ingest.app, ["--requests", "2000", "--single-limit", "100",
                                  "--rounds", "1", "--no-postgres"], tmp_path / "ingest.json")
    runs = figures["results"]
    assert {r["batch_size"] for r in runs} == {1, 500, ingest.BIG_BATCH}
    for r in runs:
        assert r["requests"] == (100 if r["batch_size"] == 1 else 2000)
        assert r["requests_per_s"] > 0 and r["events_per_s"] > 0
        assert r["raw_save_events_per_s"] > 0 and r["ratio_to_raw_save"] > 0
        assert r["accepted"] > 0 and r["malformed"] == 0
    assert isinstance(figures["target_met"], bool)


def test_the_snapshot_benchmark_runs_and_writes_positive_times(tmp_path: Path) -> None:
    figures = invoke(snapshots.app, ["--events", "5000", "--workers", "500",
                                     "--repeats", "1"], tmp_path / "snapshots.json")
    (r,) = figures["results"]
    assert r["stream_version"] == 5000 and r["headcount"] == 500
    assert r["load_with_snapshots_s"] > 0 and r["full_replay_s"] > 0
    assert r["events_read_after_snapshot"] < figures["snapshot_every"]
    assert r["worst_case_events_read_after_snapshot"] < figures["snapshot_every"]


def test_the_snapshot_benchmark_builds_a_valid_chained_stream(tmp_path: Path) -> None:
    """Its events are not made through requests, so check them against the contract."""
    ledger = Ledger(f"sqlite:///{tmp_path}/events.sqlite")
    stream = snapshots.build(ledger, 3_000, 200, show=False)
    events = ledger.stream_events(stream)
    for e in events:
        validate_record(contract_record(e))
    assert ledger.verify_stream(stream) == []
    kinds = Counter(e.event_type for e in events)
    assert kinds["establishment.worker_joined"] - kinds["establishment.worker_left"] == 200
    assert len(kinds) >= 10


def test_the_ingest_memory_benchmark_sets_memory_beside_what_is_held(tmp_path: Path) -> None:
    """At F = 0.001 the ingest passes 20 batches, so its writer process starts: the
    benchmark's ledger must write to the same tables as the writer's."""
    figures = invoke(ingest_memory.app, ["--scale", "0.001"], tmp_path / "memory.json")
    samples = figures["samples"]
    assert figures["requests"] > 20 * 500 and len(samples) >= 20
    for key in ("kept_establishment", "kept_account", "ids_worker"):
        counts = [s.get(key, 0) for s in samples]
        assert counts == sorted(counts) and counts[-1] > 0, key  # held once met
    assert samples[-1]["kept_establishment"] <= figures["establishments"]
    assert samples[-1]["cached"] <= figures["cache_size"] + 500  # a batch's own may stay
    # The cache (100,000 x F = 100) lets aggregates go into the cold tier, within its bound.
    assert 0 < samples[-1]["frozen_mib"] * 2**20 <= figures["cold_bytes"]
    assert set(figures["bytes_per_held_aggregate"]) >= {"Account", "Establishment"}
    assert 100 < figures["bytes_per_stream_id_entry"] < 2000
    assert figures["explained"]["rss_second_half_over_first"] > 0
