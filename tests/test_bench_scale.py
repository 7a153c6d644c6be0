"""The ministry-scale benchmark still runs end to end, at F = 0.001 (about 15,000
requests), against the session's real Kafka broker.

Only that every stage ran, that the stages agree with each other (every request decided,
every event published and projected) and that the figures and the RESULTS.md table are
written is checked, never how fast: speed is bench/'s business, not a timed test's.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from bench import scale

RUNNER = CliRunner()


def test_the_scale_benchmark_runs_every_stage_at_a_thousandth(
        tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIJIL_KAFKA_BOOTSTRAP", kafka_bootstrap)  # inherited by the stages
    out, md = tmp_path / "results" / "scale-0.001.json", tmp_path / "RESULTS.md"
    md.write_text("# Scale\n\nprose before\n\n<!-- scale-table:begin -->\nold\n"
                  "<!-- scale-table:end -->\n\nprose after\n")
    result = RUNNER.invoke(scale.app, ["--scale", "0.001", "--accounts", "20",
                                       "--work", str(tmp_path / "work"), "--out", str(out),
                                       "--results-md", str(md)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    f = orjson.loads(out.read_bytes())
    s, base = f["stages"], f["baselines"]

    assert s["simulate"]["requests"] > 10_000 and s["simulate"]["campaigns"] >= 2
    assert s["ingest"]["requests"] == s["simulate"]["requests"]
    assert s["ingest"]["malformed"] == 0 and s["ingest"]["accepted"] > s["ingest"]["refused"]
    assert s["publish"]["events"] == s["ingest"]["events"] > s["ingest"]["requests"]
    assert s["project"]["events"] == s["publish"]["events"]
    assert s["project"]["failed"] == 0 and s["project"]["undecodable"] == 0
    # The transaction trail keeps one row a request, accepted or refused.
    assert s["project"]["rows"]["trail"] == s["simulate"]["requests"]
    assert s["project"]["rows"]["account_requests"] == s["simulate"]["requests"]
    assert s["project"]["rows"]["establishments"] == s["simulate"]["establishments"]
    assert base["raw_consume"]["events"] == s["publish"]["events"]
    for name in ("raw_save", "raw_produce", "raw_consume"):
        assert base[name]["events_per_s"] > 0, name
    assert base["sql_insert"]["rows"] == s["project"]["rows_total"]
    for stage in ("simulate", "ingest", "publish", "project", "queries"):
        assert s[stage]["peak_rss_mib"] > 0 and s[stage]["seconds"] > 0, stage
    assert s["ingest"]["store_mib"] > 0 and s["publish"]["topic_mib"] > 0

    audits = s["queries"]["audit_credential"]
    assert audits["audits"] >= s["simulate"]["campaigns"]
    assert 0 < audits["p50_s"] <= audits["p99_s"] <= audits["max_s"]
    # every live audit took its requests from the read models' rows, none from the store
    assert audits["requests_from"] == {"read models": audits["audits"]}
    as_of = s["queries"]["as_of"]
    assert 0 < as_of["middle"]["events_replayed"] <= as_of["end"]["events_replayed"]

    t = f["targets"]  # F = 1.0's disk: this run's files over F, against what was free
    assert t["disk_gib_at_full_scale_estimate"] == round(
        (s["ingest"]["store_mib"] + s["publish"]["topic_mib"]
         + s["project"]["read_models_mib"]) / 0.001 / 1024, 1)
    assert t["fits_disk_at_full_scale"] == (t["disk_gib_at_full_scale_estimate"]
                                            < f["disk_free_gib_at_start"])
    assert all(v is not None and v > 0 for v in f["ratios"].values()), f["ratios"]
    assert f["services_against_seed_002"]["permit.renew"]["simulated"] > 0
    table = md.read_text()
    assert "prose before" in table and "prose after" in table and "\nold\n" not in table
    assert "| 0.001 |" in table
    assert not (tmp_path / "work").exists()  # removed unless --keep


def test_the_overlapped_pipeline_runs_at_a_thousandth(
        tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--overlap`: ingest, publish and project at once (bench/overlap.py), each part
    done with all of the part before it."""
    monkeypatch.setenv("SIJIL_KAFKA_BOOTSTRAP", kafka_bootstrap)
    out, md = tmp_path / "results" / "scale-0.001-overlapped.json", tmp_path / "RESULTS.md"
    work = tmp_path / "work"
    result = RUNNER.invoke(scale.app, ["--scale", "0.001", "--accounts", "10", "--overlap",
                                       "--work", str(work), "--keep", "--out", str(out),
                                       "--results-md", str(md)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    f = orjson.loads(out.read_bytes())
    s, pipeline = f["stages"], f["pipeline"]

    assert s["ingest"]["requests"] == s["simulate"]["requests"]
    assert s["publish"]["events"] == s["ingest"]["events"] > s["ingest"]["requests"]
    assert s["project"]["events"] == s["publish"]["events"]
    assert s["project"]["rows"]["trail"] == s["simulate"]["requests"]
    assert all(s[name]["overlapped"] for name in ("ingest", "publish", "project"))
    # each part ends after the one it follows; the pipeline is the last to end
    assert 0 < s["ingest"]["seconds"] <= s["publish"]["seconds"] \
        <= s["project"]["seconds"] <= pipeline["seconds"]
    assert f["targets"]["pipeline_seconds"] == round(pipeline["seconds"], 1)
    assert f["ratios"] == {}  # no stage ran alone
    assert "| 0.001 overlapped |" in md.read_text()
    assert not (work / "requests.jsonl").exists() and (work / "events.sqlite").exists()


def test_a_stopped_run_resumes_from_the_stage_it_stopped_in(
        tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--resume`: F = 1.0's stages one after another outlast a working session. A run
    stopped in its project stage (its figures written up to publish) goes on from there:
    simulate, ingest and publish are not run again, and the rebuild reads the topic that
    the kept publish wrote."""
    monkeypatch.setenv("SIJIL_KAFKA_BOOTSTRAP", kafka_bootstrap)
    out, md, work = tmp_path / "scale-0.001.json", tmp_path / "RESULTS.md", tmp_path / "w"
    args = ["--scale", "0.001", "--accounts", "5", "--work", str(work), "--out", str(out),
            "--results-md", str(md), "--baseline-limit", "2000"]
    first = RUNNER.invoke(scale.app, [*args, "--keep"])
    assert first.exit_code == 0, first.output + repr(first.exception)
    whole = orjson.loads(out.read_bytes())
    stopped = {**whole, "stages": {k: whole["stages"][k]
                                   for k in ("simulate", "ingest", "publish")}}
    del stopped["baselines"]
    out.write_bytes(orjson.dumps(stopped))
    (work / "projections.sqlite").write_bytes(b"half a rebuild")  # what a stop leaves

    again = RUNNER.invoke(scale.app, [*args, "--resume"])
    assert again.exit_code == 0, again.output + repr(again.exception)
    f = orjson.loads(out.read_bytes())
    s = f["stages"]
    for kept in ("simulate", "ingest", "publish"):
        assert s[kept] == whole["stages"][kept], kept
    assert f["topic"] == whole["topic"] and f["commit"] == whole["commit"]
    assert s["project"]["events"] == s["publish"]["events"]
    assert s["project"]["rows"] == whole["stages"]["project"]["rows"]
    assert s["queries"]["audit_credential"]["audits"] > 0
    assert set(f["baselines"]) == {"raw_save", "raw_produce", "raw_consume", "sql_insert"}
    [resumed] = f["resumed"]
    assert resumed["stages_kept"] == ["ingest", "publish", "simulate"]
    assert resumed["date"] == whole["date"] and resumed["command"] == whole["command"]
    assert not work.exists()  # finished, and not kept this time


def said(result: Result) -> str:
    """The CLI's words without the error panel's borders and line breaks."""
    return " ".join(result.output.replace("│", " ").split())


def test_a_run_stopped_in_its_ingest_cannot_resume_without_its_requests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest starts again on an empty store from the requests file; once that file
    is removed (after a whole ingest) the run says so rather than ingest nothing."""
    monkeypatch.chdir(tmp_path)  # short paths: the error panel breaks long ones
    Path("w").mkdir()
    Path("w/events.sqlite").write_bytes(b"a stopped ingest's rows")
    Path("s.json").write_bytes(orjson.dumps({"scale": 0.001,
                                             "stages": {"simulate": {"requests": 9}}}))
    result = RUNNER.invoke(scale.app, ["--scale", "0.001", "--work", "w", "--out", "s.json",
                                       "--resume", "--results-md", "R.md"])
    assert result.exit_code == 2, result.output
    assert "w/requests.jsonl is gone" in said(result) and "start afresh" in said(result)
    assert Path("w/events.sqlite").read_bytes() == b"a stopped ingest's rows"


def test_resume_needs_the_stopped_runs_results_and_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = RUNNER.invoke(scale.app, ["--scale", "0.001", "--work", "none", "--out",
                                       "none.json", "--resume"])
    assert result.exit_code == 2, result.output
    assert "--resume: needs the run's results file (none.json)" in said(result)
    assert not Path("none").exists()
