"""Running the projection runners: a consumer group over the events topic whose handler
folds every projection into the read models' database."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from consumers.runtime import RunStats, Subscriber
from projections.catalog import ALL
from projections.database import projections_engine
from projections.rows import Projection
from projections.runner import ProjectionHandler

GROUP = "sijil-projections"


def run_projections(*, url: str, bootstrap: str, topic: str,
                    projections: Sequence[Projection] = ALL, group: str = GROUP,
                    stop: threading.Event | None = None, follow: bool = False,
                    batch: int = 5000) -> RunStats:
    engine = projections_engine(url)
    handler = ProjectionHandler(engine, projections)
    subscriber = Subscriber(bootstrap=bootstrap, topic=topic, group=group, handler=handler,
                            engine=engine, batch=batch, ordered=True)
    try:
        return subscriber.run(stop, until_caught_up=not follow)
    finally:
        subscriber.close()
        engine.dispose()
