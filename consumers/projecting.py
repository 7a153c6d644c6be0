"""Running the projection runners: a consumer group over the events topic whose handler
folds every projection into the read models' database.

The group resumes from the least of its projections' own offsets (`MemberOffsets`): a
projection rebuilt ahead of the others (`sijil rebuild`) skips what it already has."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from consumers.alerts import relay_alerts
from consumers.projection_runner import GROUP, ProjectionHandler
from consumers.runtime import RunStats, Subscriber
from consumers.topics import ALERTS_FRAUD_TOPIC, ALERTS_NITAQAT_TOPIC
from projections.catalog import ALL
from projections.database import projections_engine
from projections.fraud_alerts import ALERTS as FRAUD_ALERTS
from projections.nitaqat_alerts import ALERTS
from projections.rows import Projection

__all__ = ["GROUP", "run_projections"]


def run_projections(*, url: str, bootstrap: str, topic: str,
                    projections: Sequence[Projection] = ALL, group: str = GROUP,
                    stop: threading.Event | None = None, follow: bool = False,
                    batch: int = 5000, alerts_topic: str = ALERTS_NITAQAT_TOPIC) -> RunStats:
    """Project the topic until caught up (or until stopped, with `follow`), then relay
    the Nitaqat alerts written meanwhile to the alerts topic."""
    engine = projections_engine(url)
    handler = ProjectionHandler(engine, projections, group=group)
    subscriber = Subscriber(bootstrap=bootstrap, topic=topic, group=group, handler=handler,
                            engine=engine, batch=batch, ordered=True)
    if handler.offsets is not None:  # start from the least projection's, save them all
        subscriber.offsets = handler.offsets
    try:
        stats = subscriber.run(stop, until_caught_up=not follow)
        if any(p.name == "nitaqat_alerts" for p in projections):
            stats.alerts_relayed = relay_alerts(engine, ALERTS, bootstrap, alerts_topic)
        if any(p.name == "fraud_alerts" for p in projections):
            stats.alerts_relayed += relay_alerts(engine, FRAUD_ALERTS, bootstrap,
                                                 ALERTS_FRAUD_TOPIC, key="account_id")
        return stats
    finally:
        subscriber.close()
        engine.dispose()
