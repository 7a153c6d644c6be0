"""Every projection, in the order their folds run (a projection after those it reads)."""

from __future__ import annotations

from projections import (
    account_requests,
    establishments,
    fraud_alerts,
    nitaqat_alerts,
    permits,
    statistics,
    trail,
    workers,
)
from projections.rows import Projection

ALL: tuple[Projection, ...] = (workers.PROJECTION, permits.PROJECTION,
                               establishments.PROJECTION, nitaqat_alerts.PROJECTION,
                               trail.PROJECTION, account_requests.PROJECTION,
                               statistics.PROJECTION,
                               *fraud_alerts.PROJECTIONS)
BY_NAME: dict[str, Projection] = {p.name: p for p in ALL}


def with_requirements(names: list[str]) -> tuple[Projection, ...]:
    """The named projections and those they read, in fold order."""
    wanted = set(names)
    for p in reversed(ALL):
        if p.name in wanted:
            wanted.update(p.requires)
    unknown = wanted - set(BY_NAME)
    if unknown:
        raise KeyError(f"projection: unknown {sorted(unknown)}; known: {sorted(BY_NAME)}")
    return tuple(p for p in ALL if p.name in wanted)
