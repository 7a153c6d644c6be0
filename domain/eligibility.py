"""Which services an establishment keeps: its Nitaqat band and its wage-protection record.

Applied to every establishment service before the service's own rules, so a suspended
or red establishment is refused with the sanction's rule, not a downstream symptom.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from domain.catalogue import service
from domain.decision import Decision
from domain.establishment import Establishment
from domain.nitaqat import at_least
from domain.refusals import require
from domain.rules import Rules

# Red loses new visas, permit issue and renewal for expatriates, new branches and the
# Saudization certificate (DESIGN.md; jkmanagement.ae, ksaexpats.com).
RED_WITHDRAWN: Final[frozenset[str]] = frozenset({
    "visa.issue", "visa.compensatory_request", "recruitment.balance_request",
    "recruitment.disbursement_request", "permit.issue", "permit.renew", "permit.temporary",
    "establishment.branch_add", "certificate.saudization",
})
# Visas need medium green or better (qiwa.sa/en/visa, official).
NEEDS_MEDIUM_GREEN: Final[frozenset[str]] = frozenset({"visa.issue",
                                                       "visa.compensatory_request"})
# Filing the wage file is how a suspension ends; account management is not an e-service.
NEVER_SUSPENDED: Final[frozenset[str]] = frozenset({
    "payroll.wage_protection_upload", "account.delegate_registered",
    "account.delegate_confirmed", "account.delegate_revoked",
})


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _parse_month(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def months_late(est: Establishment, today: date) -> int:
    """Whole months of wages due but not filed; the current month is not yet due."""
    opened = _month_index(date.fromisoformat(est.opened_on))
    last = max((_parse_month(m) for m in est.wage_files), default=opened - 1)
    return max(0, _month_index(today) - last - 1)


def compliance_bp(est: Establishment, today: date, months: int) -> int:
    """Average share of workers paid as recorded over the last `months` months, counting
    an unfiled month as 0 and skipping months before the file was opened."""
    opened = _month_index(date.fromisoformat(est.opened_on))
    current = _month_index(today)
    window = [m for m in range(current - months, current) if m >= opened]
    if not window:
        return 10_000
    filed = {_parse_month(m): bp for m, bp in est.wage_files.items()}
    return sum(filed.get(m, 0) for m in window) // len(window)


def wages_free_transfer(est: Establishment, today: date, rules: Rules) -> bool:
    """More than three months late frees the workers to transfer without consent."""
    return months_late(est, today) > rules.wps_suspend_all_months


def check(d: Decision, est: Establishment) -> None:
    code = d.request.service
    if code not in NEVER_SUSPENDED:
        late = months_late(est, d.today)
        require(late <= d.rules.wps_suspend_all_months, "WPS_SUSPENDED_ALL",
                f"{est.file_number} is {late} months late with wages")
        require(late < d.rules.wps_suspend_services_months or service(code).work_permit,
                "WPS_SUSPENDED", f"{est.file_number} is {late} months late with wages")
    band = d.assessment(est).band
    require(not (band == "red" and code in RED_WITHDRAWN), "NITAQAT_RED_SERVICE",
            f"{est.file_number} is in the red band")
    require(code not in NEEDS_MEDIUM_GREEN or at_least(band, "medium_green"),
            "NITAQAT_BAND_TOO_LOW", f"{est.file_number} is {band}; {code} needs medium green")
