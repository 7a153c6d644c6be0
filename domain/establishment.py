"""The establishment (منشأة): profile, branches, workforce counts, band, wages, visas.

It keeps counts, not a list of workers, so that its snapshots stay small however large
its workforce: each worker's own stream knows how it counts.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain.nitaqat import Workforce, record_sample, week_of
from domain.streams import Folds, Stream

KEEP_WEEKS = 26


def _opened(est: Establishment, p: dict[str, Any], e: Stream.Event) -> None:
    est.file_number = e.establishment_id or ""
    est.name = p["name"]
    est.commercial_registration = p["commercial_registration"]
    est.activity = p["activity"]
    est.city = p["city"]
    est.owner_account_id = p["owner_account_id"]
    est.owner_counts_as_saudi = p["owner_counts_as_saudi"]
    est.opened_on = e.occurred_at[:10]
    est.samples = record_sample([], week_of(date.fromisoformat(est.opened_on)), 0, KEEP_WEEKS)


def _activity(est: Establishment, p: dict[str, Any], _: Stream.Event) -> None:
    est.activity = p["to_activity"]


def _branch(est: Establishment, p: dict[str, Any], _: Stream.Event) -> None:
    est.branches[p["branch_id"]] = p["city"]


def _count(est: Establishment, c: dict[str, Any], sign: int) -> None:
    wf = est.workforce.moved(c, sign)
    est.saudis, est.saudi_weight_milli = wf.saudis, wf.saudi_weight_milli
    est.disabled_saudis, est.expatriates = wf.disabled_saudis, wf.expatriates


def _sampled(est: Establishment, e: Stream.Event, p: dict[str, Any]) -> None:
    week = week_of(date.fromisoformat(e.occurred_at[:10]))
    est.samples = record_sample(est.samples, week, p["percentage_bp"], KEEP_WEEKS)


def _joined(est: Establishment, p: dict[str, Any], e: Stream.Event) -> None:
    _count(est, p["contribution"], +1)
    _sampled(est, e, p)
    if p.get("visa_id") in est.visas:
        est.visas[p["visa_id"]] = "used"


def _left(est: Establishment, p: dict[str, Any], e: Stream.Event) -> None:
    if p.get("counted", True):
        _count(est, p["contribution"], -1)
    _sampled(est, e, p)


def _band(est: Establishment, p: dict[str, Any], e: Stream.Event) -> None:
    est.band = p["to_band"]
    est.band_since = e.occurred_at


def _wages(est: Establishment, p: dict[str, Any], _: Stream.Event) -> None:
    est.wage_files[p["month"]] = p["compliance_bp"]


def _visa_issued(est: Establishment, p: dict[str, Any], _: Stream.Event) -> None:
    est.visas[p["visa_id"]] = "issued"


def _visa_cancelled(est: Establishment, p: dict[str, Any], _: Stream.Event) -> None:
    est.visas[p["visa_id"]] = "cancelled"


class Establishment(Stream):
    def __init__(self) -> None:
        super().__init__()
        self.file_number = ""
        self.name = ""
        self.commercial_registration = ""
        self.activity = ""
        self.city = ""
        self.owner_account_id = ""
        self.owner_counts_as_saudi = False
        self.opened_on = ""
        self.branches: dict[str, str] = {}
        self.saudis = 0
        self.saudi_weight_milli = 0
        self.disabled_saudis = 0
        self.expatriates = 0
        self.samples: list[list[int]] = []
        self.band: str | None = None  # not yet assessed: the first band change is from None
        self.band_since = ""
        self.wage_files: dict[str, int] = {}
        self.visas: dict[str, str] = {}

    @property
    def workforce(self) -> Workforce:
        return Workforce(self.saudis, self.saudi_weight_milli, self.disabled_saudis,
                         self.expatriates)

    FOLDS: ClassVar[Folds] = {
        "establishment.file_opened": _opened,
        "establishment.activity_changed": _activity,
        "establishment.branch_added": _branch,
        "establishment.worker_joined": _joined,
        "establishment.worker_left": _left,
        "establishment.band_changed": _band,
        "establishment.wage_file_uploaded": _wages,
        "establishment.visa_issued": _visa_issued,
        "establishment.visa_cancelled": _visa_cancelled,
    }
