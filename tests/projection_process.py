"""The projection runner in its own process, for tests that kill it: run_projections with
a handler that announces each batch on stdout and then lingers inside the batch's
transaction (its rows written, not committed), so that a SIGKILL lands mid-batch.

    python tests/projection_process.py READ_URL BOOTSTRAP TOPIC GROUP \
        [--batch N] [--linger SECONDS] [--follow]

Prints "ready", then "batch <n> <records>" as each batch starts; exits 0 once caught up
(or, with --follow, on SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Connection

from consumers import projecting as service
from consumers.projection_runner import ProjectionHandler
from consumers.runtime import Delivery, Subscriber


class LingeringHandler(ProjectionHandler):
    """The real handler, slowed down after its writes and before the commit."""

    linger = 0.3

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = 0

    def handle(self, conn: Connection, deliveries: Sequence[Delivery]) -> None:
        self.batches += 1
        print(f"batch {self.batches} {len(deliveries)}", flush=True)
        super().handle(conn, deliveries)
        time.sleep(self.linger)


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("url", "bootstrap", "topic", "group"):
        parser.add_argument(name)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--linger", type=float, default=0.3)
    parser.add_argument("--follow", action="store_true")
    args = parser.parse_args()
    LingeringHandler.linger = args.linger
    service.ProjectionHandler = LingeringHandler  # type: ignore[misc]
    # A killed member's partitions come back at once: a restarted process takes its place
    # under the same static member id instead of waiting out the session.
    service.Subscriber = partial(  # type: ignore[misc]
        Subscriber, consumer_options={"group_instance_id": f"{args.group}-runner",
                                      "session_timeout_ms": 6000,
                                      "heartbeat_interval_ms": 1000})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stats = service.run_projections(url=args.url, bootstrap=args.bootstrap, topic=args.topic,
                                    group=args.group, stop=stop, follow=args.follow,
                                    batch=args.batch)
    print(f"done {stats.batches} {stats.handled} {stats.dead_lettered}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
