"""The ministry's published figures that shape the simulated workload.

Copied from shared/data/ministry_statistics.json (seed 002 for the service counts of
the first ten months, seed 000 for the portal's share of each service) so that the
simulator needs no file outside the package; tests/test_simulator.py checks this copy
against the file when the file is present.
"""

from __future__ import annotations

from typing import Final

# service_counts_first_10_months.services (seed 002).
SERVICE_COUNTS: Final[dict[str, int]] = {
    "permit.renew": 7_855_568,
    "permit.issue": 981_372,
    "permit.temporary": 32_031,
    "permit.final_exit": 35_952,
    "worker.branch_transfer": 231_556,
    "establishment.activity_change": 13_290,
    "worker.profession_change": 146_059,
    "worker.service_transfer": 924_942,
    "portal.registration": 58_938,
    "account.delegate_registered": 5_570,
    "account.agent_registered": 1_646,
    "account.owner_registered": 31_273,
    "visa.compensatory_request": 2_423,
    "certificate.saudization": 435_887,
    "visa.cancel": 91_009,
    "absence.report": 213_979,
    "absence.cancel": 110_613,
    "dependents.transfer": 34_087,
    "establishment.open_file": 140_466,
    "recruitment.balance_request": 117_645,
    "recruitment.disbursement_request": 137_779,
}

# Renewals follow the permits' own calendar; every other counted service is scaled to
# them, because renewals are what the ministry does most and what the population fixes.
ANCHOR: Final = "permit.renew"

# electronic_share_daily (seed 000): the share done on the portal rather than at an office.
PORTAL_SHARE: Final[dict[str, float]] = {
    "permit.issue": 0.99, "permit.renew": 0.99,
    "absence.report": 0.99, "absence.cancel": 0.99,
    "permit.final_exit": 1.00,
    "worker.profession_change": 0.93,
}
OVERALL_PORTAL_SHARE: Final = 0.90

# Services a labour-office clerk may file for an establishment (domain/authorization.py
# lets a clerk do any establishment service but the owner's own).
OFFICE_SERVICES: Final[frozenset[str]] = frozenset({
    "permit.issue", "permit.renew", "permit.temporary", "permit.final_exit",
    "absence.report", "absence.cancel", "worker.profession_change",
    "worker.branch_transfer", "worker.service_transfer", "dependents.transfer",
    "visa.issue", "visa.cancel", "visa.compensatory_request",
    "recruitment.balance_request", "recruitment.disbursement_request",
    "certificate.saudization", "establishment.activity_change", "worker.join",
})


def per_renewal(code: str) -> float:
    """How many requests of `code` the ministry saw for each permit renewal."""
    return SERVICE_COUNTS[code] / SERVICE_COUNTS[ANCHOR]


def office_share(code: str) -> float:
    if code not in OFFICE_SERVICES:
        return 0.0
    return 1.0 - PORTAL_SHARE.get(code, OVERALL_PORTAL_SHARE)
