"""The worker (عامل): identity, employment, permit, absence report, whereabouts.

One stream a person, keyed by the id they joined with, so a service transfer moves the
worker between establishments without moving any history.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, ClassVar

from domain.streams import Folds, Stream

ACTIVE = "active"
EXIT_REQUESTED = "final_exit_requested"
LEFT_KINGDOM = "left_kingdom"
FINAL_EXIT = "final_exit"
GONE = frozenset({LEFT_KINGDOM, FINAL_EXIT})


def _joined(w: Worker, p: dict[str, Any], e: Stream.Event) -> None:
    for key in ("worker_id", "nationality", "saudi_category", "profession", "wage_sar",
                "part_time", "disabled", "branch_id", "arrival_date", "iqama_expiry",
                "contract_end"):
        setattr(w, key, p[key])
    w.employer = e.establishment_id
    w.employed_since = e.occurred_at[:10]
    w.status = ACTIVE
    w.permit = None
    w.absence = None
    w.detached = False


def _permit(w: Worker, p: dict[str, Any], e: Stream.Event) -> None:
    w.permit = {"type": p["permit_type"], "valid_from": p["valid_from"],
                "valid_until": p["valid_until"], "event_id": e.event_id}


def _exit_requested(w: Worker, _: dict[str, Any], e: Stream.Event) -> None:
    w.status = EXIT_REQUESTED
    w.exit_event_id = e.event_id


def _exit_withdrawn(w: Worker, _: dict[str, Any], __: Stream.Event) -> None:
    w.status = ACTIVE
    w.exit_event_id = None


def _absence(w: Worker, p: dict[str, Any], e: Stream.Event) -> None:
    w.absence = {"filed_by": e.establishment_id, "filed_on": e.occurred_at[:10],
                 "event_id": e.event_id}
    w.detached = True


def _absence_closed(w: Worker, _: dict[str, Any], __: Stream.Event) -> None:
    w.absence = None
    w.detached = False


def _profession(w: Worker, p: dict[str, Any], _: Stream.Event) -> None:
    w.profession = p["to_profession"]


def _branch(w: Worker, p: dict[str, Any], _: Stream.Event) -> None:
    w.branch_id = p["to_branch_id"]


def _transferred(w: Worker, p: dict[str, Any], e: Stream.Event) -> None:
    w.employer = p["to_establishment_id"]
    w.employed_since = e.occurred_at[:10]
    w.absence = None
    w.detached = False
    w.status = ACTIVE
    w.branch_id = None
    w.contract_end = None
    w.last_transfer = {"event_id": e.event_id, "from": p["from_establishment_id"],
                       "to": p["to_establishment_id"]}


def _dependents(w: Worker, p: dict[str, Any], _: Stream.Event) -> None:
    w.dependents += p["dependents"]


def _left_kingdom(w: Worker, p: dict[str, Any], _: Stream.Event) -> None:
    w.status = LEFT_KINGDOM if p["kind"] == "exit_without_return" else FINAL_EXIT
    w.last_employer = w.employer
    w.employer = None
    w.absence = None
    w.detached = False


def _returned(w: Worker, _: dict[str, Any], __: Stream.Event) -> None:
    w.abroad = False


def _iqama(w: Worker, p: dict[str, Any], _: Stream.Event) -> None:
    w.iqama_expiry = p["iqama_expiry"]


def _imprisonment(w: Worker, p: dict[str, Any], _: Stream.Event) -> None:
    w.imprisoned = p["imprisoned"]


class Worker(Stream):
    def __init__(self) -> None:
        super().__init__()
        self.worker_id = ""
        self.nationality = ""
        self.saudi_category: str | None = None
        self.profession = ""
        self.wage_sar = 0
        self.part_time = False
        self.disabled = False
        self.branch_id: str | None = None
        self.arrival_date: str | None = None
        self.iqama_expiry: str | None = None
        self.contract_end: str | None = None
        self.employer: str | None = None
        self.last_employer: str | None = None
        self.employed_since = ""
        self.status = ACTIVE
        self.permit: dict[str, Any] | None = None
        self.absence: dict[str, Any] | None = None
        self.detached = False
        self.imprisoned = False
        self.abroad = False
        self.dependents = 0
        self.exit_event_id: str | None = None
        self.last_transfer: dict[str, Any] | None = None

    @property
    def saudi(self) -> bool:
        """Counted as Saudi in Nitaqat: nationals and the categories Qiwa added in 2024."""
        return self.saudi_category is not None

    def employed_by(self, file_number: str) -> bool:
        return self.employer == file_number and self.status not in GONE

    def days_left(self, document_until: str | None, today: date) -> int:
        if document_until is None:
            return -10**6
        return (date.fromisoformat(document_until) - today).days

    def absence_status(self, today: date, discontinued_days: int) -> str | None:
        """"discontinued from work" for the first days after a report, then "absent"."""
        if self.absence is None:
            return None
        filed = date.fromisoformat(self.absence["filed_on"])
        return "discontinued" if today < filed + timedelta(days=discontinued_days) else "absent"

    FOLDS: ClassVar[Folds] = {
        "worker.joined": _joined,
        "worker.permit_issued": _permit,
        "worker.permit_renewed": _permit,
        "worker.final_exit_requested": _exit_requested,
        "worker.final_exit_withdrawn": _exit_withdrawn,
        "worker.absence_reported": _absence,
        "worker.absence_cancelled": _absence_closed,
        "worker.profession_changed": _profession,
        "worker.branch_transferred": _branch,
        "worker.service_transferred": _transferred,
        "worker.dependents_transferred": _dependents,
        "worker.left_kingdom": _left_kingdom,
        "worker.returned": _returned,
        "worker.iqama_renewed": _iqama,
        "worker.imprisonment_flagged": _imprisonment,
    }
