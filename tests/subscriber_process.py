"""A subscriber in its own process, for tests that kill it: a SQL handler that logs every
event it handles into `effects` (no unique key, so a duplicate would show) and is slow
enough to be caught mid-batch.

    python tests/subscriber_process.py DB_URL BOOTSTRAP TOPIC GROUP [--until-caught-up]
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, create_engine

from consumers.runtime import Delivery, Subscriber

METADATA = MetaData()
EFFECTS = Table("effects", METADATA, Column("event_id", String(36)),
                Column("position", Integer))


class SlowLogger:
    def handle(self, conn: Connection, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            conn.execute(EFFECTS.insert().values(event_id=d.record["event_id"],
                                                 position=d.record["position"]))
            time.sleep(0.002)


def main(url: str, bootstrap: str, topic: str, group: str, until: bool) -> int:
    engine = create_engine(url)
    METADATA.create_all(engine)
    subscriber = Subscriber(bootstrap=bootstrap, topic=topic, group=group,
                            handler=SlowLogger(), engine=engine, batch=100,
                            # a killed member's partitions come back in seconds, not 45
                            consumer_options={"session_timeout_ms": 6000,
                                              "heartbeat_interval_ms": 1000})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    subscriber.run(stop, until_caught_up=until)
    subscriber.close()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(*args[:4], until="--until-caught-up" in args))
