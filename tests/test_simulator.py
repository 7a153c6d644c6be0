"""The simulator: deterministic, well-formed, in the ministry's proportions, with
ground-truth labels kept out of the requests."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from domain.requests import parse_request
from simulator import SimulationSummary, simulate
from simulator.figures import ANCHOR, SERVICE_COUNTS

STATISTICS = (pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
              / "ministry_statistics.json")
LABEL_FIELDS = {"campaign", "leaked_credential_id", "leaked_at", "thief_device_id",
                "thief_ip", "actor_account_id"}

REQUEST_FIELDS = {"request_id", "service", "occurred_at", "channel", "actor", "session_id",
                  "auth", "client", "establishment_id", "payload"}


def _run(**arguments: Any) -> bytes:
    out = io.BytesIO()
    simulate(out=out, **arguments)
    return out.getvalue()


class History:
    """One mid-sized history, written once for the module's tests."""

    def __init__(self, root: pathlib.Path) -> None:
        self.out, self.plan_path, self.labels_path = (
            root / "requests.jsonl", root / "plan.json", root / "labels.jsonl")
        self.progress: list[int] = []
        self.summary: SimulationSummary = simulate(
            establishments=1500, months=4, seed=2, out=self.out, leaks=4,
            labels=self.labels_path, plan=self.plan_path, progress=self.progress.append)
        self.raw = self.out.read_bytes().splitlines()
        self.lines = [json.loads(line) for line in self.raw]
        self.plan = json.loads(self.plan_path.read_text())
        self.labels = [json.loads(line) for line in self.labels_path.read_text().splitlines()]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return History(tmp_path_factory.mktemp("simulated"))


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    first = _run(establishments=60, months=2, seed=5, leaks=1)
    assert first == _run(establishments=60, months=2, seed=5, leaks=1)
    assert first != _run(establishments=60, months=2, seed=6, leaks=1)
    assert first.count(b"\n") > 1000


def test_bytes_do_not_depend_on_string_hashing() -> None:
    """No set of strings is ever iterated: another PYTHONHASHSEED, the same history."""
    code = ("import hashlib, io; from simulator import simulate; b = io.BytesIO(); "
            "simulate(establishments=40, months=2, seed=3, out=b, leaks=1); "
            "print(hashlib.sha256(b.getvalue()).hexdigest())")
    root = pathlib.Path(__file__).resolve().parents[1]
    digests = {subprocess.run([sys.executable, "-c", code], cwd=root, check=True,
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed,
                                   "PYTHONPATH": str(root)}).stdout
               for seed in ("1", "2")}
    assert len(digests) == 1


def test_every_line_is_a_valid_request_in_time_order(history: History) -> None:
    for line in history.raw:
        parse_request(line)
    stamps = [line["occurred_at"] for line in history.lines]
    assert stamps == sorted(stamps)
    assert all(s.endswith("Z") for s in stamps)
    ids = [line["request_id"] for line in history.lines]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "r2-000000001" and ids[-1] == f"r2-{len(ids):09d}"


def test_the_plan_counts_exactly_the_lines_written(history: History) -> None:
    written = Counter(line["service"] for line in history.lines)
    assert history.plan["services"] == dict(written)
    assert history.summary.services == dict(written)
    assert history.plan["totals"]["requests"] == len(history.lines)
    setup, activity = Counter(history.plan["setup"]), Counter(history.plan["activity"])
    assert setup + activity == written
    assert history.plan["arguments"]["establishments"] == 1500
    assert history.progress[-1] == len(history.lines)
    assert history.progress == sorted(history.progress)


def _campaign_counts(history: History) -> Counter[str]:
    by_id = {line["request_id"]: line["service"] for line in history.lines}
    return Counter(by_id[label["request_id"]] for label in history.labels
                   if label["type"] == "request")


def test_the_counted_services_follow_the_ministrys_proportions(history: History) -> None:
    """Seed 002's services, set-up and campaign requests set aside: each within 10% of
    its published share (or within one request, for the rarest)."""
    counts = Counter(history.plan["activity"]) - _campaign_counts(history)
    ours = {code: counts[code] for code in SERVICE_COUNTS}
    assert max(ours, key=lambda code: ours[code]) == ANCHOR
    total, published = sum(ours.values()), sum(SERVICE_COUNTS.values())
    for code, count in SERVICE_COUNTS.items():
        expected = total * count / published
        assert abs(ours[code] - expected) <= max(0.10 * expected, 1.0), (code, ours[code],
                                                                         expected)


def test_the_embedded_figures_match_the_shared_statistics() -> None:
    if not STATISTICS.exists():
        pytest.skip(f"{STATISTICS} is not on this machine")
    services = json.loads(STATISTICS.read_text())["service_counts_first_10_months"]["services"]
    assert {code: s["count"] for code, s in services.items()} == SERVICE_COUNTS


def test_labels_name_real_requests_and_stay_out_of_them(history: History) -> None:
    headers = [label for label in history.labels if label["type"] == "campaign"]
    requests = [label for label in history.labels if label["type"] == "request"]
    assert len(headers) == history.summary.campaigns == 4
    by_id = {line["request_id"]: line for line in history.lines}
    assert all(label["request_id"] in by_id for label in requests)
    for header in headers:
        own = [r for r in requests if r["campaign"] == header["campaign"]]
        assert len(own) == header["requests"] > 0
        assert {by_id[r["request_id"]]["client"]["device_id"] for r in own} == {
            header["thief_device_id"]}
    for raw, line in zip(history.raw, history.lines, strict=True):
        assert b"campaign" not in raw and b"leak-" not in raw
        assert not LABEL_FIELDS & set(line) and not LABEL_FIELDS & set(line["payload"])
        assert set(line) == REQUEST_FIELDS


def test_thieves_use_a_device_the_victim_never_used(history: History) -> None:
    for header in (label for label in history.labels if label["type"] == "campaign"):
        victim = header["account_id"]
        before = {line["client"]["device_id"] for line in history.lines
                  if line["actor"]["account_id"] == victim
                  and line["occurred_at"] < header["leaked_at"]}
        assert before, "the victim worked before the leak"
        assert header["thief_device_id"] not in before
        assert header["leaked_credential_id"].startswith(f"cred-{victim}-")


def test_campaigns_use_the_victims_credential_at_night_or_by_day(history: History) -> None:
    by_id = {line["request_id"]: line for line in history.lines}
    for label in (x for x in history.labels if x["type"] == "request"):
        line = by_id[label["request_id"]]
        assert line["auth"]["credential_id"] == label["credential_id"]
        assert line["actor"]["account_id"] == label["actor_account_id"]
        if label["actor_account_id"] == label["account_id"]:
            assert label["kind"] != "service_transfer_in"


def test_small_history_is_mostly_accepted_by_the_ledger(tmp_path: pathlib.Path) -> None:
    """The simulator's view of the rules agrees with the domain's: the refusals are the
    ones it means (red establishments, imprisoned workers, early renewals)."""
    ledger_module = pytest.importorskip("domain.ledger")
    ingest_module = pytest.importorskip("domain.ingest")
    lines = _run(establishments=40, months=3, seed=9, leaks=1).splitlines()
    ledger = ledger_module.Ledger(f"sqlite:///{tmp_path / 'events.sqlite'}")
    report = ingest_module.ingest(ledger, lines)
    assert not report.malformed
    accepted = sum(report.accepted.values())
    assert accepted / report.decided > 0.95, report.rules.most_common(5)
    meant = {"NITAQAT_RED_SERVICE", "WORKER_IMPRISONED", "PERMIT_RENEWAL_NOT_OPEN",
             "WPS_SUSPENDED_ALL", "ABSENCE_CANCEL_WINDOW"}
    assert {rule for _, rule in report.rules} <= meant, report.rules


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        simulate(establishments=0, months=1, seed=1, out=io.BytesIO())
