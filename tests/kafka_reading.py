"""Reading a topic back whole in tests: every committed record, decoded, by partition."""

from __future__ import annotations

from typing import Any

from consumers.codec import decode
from consumers.inspection import committed_messages


def read_topic(bootstrap: str, topic: str) -> dict[int, list[Any]]:
    """All committed records of the topic, per partition, in offset order."""
    out: dict[int, list[Any]] = {}
    for partition, messages in committed_messages(bootstrap, topic):
        out.setdefault(partition, []).extend(messages)
    return out


def decoded(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of the topic decoded, in store position order."""
    records = [decode(m.value, m.headers) for part in read_topic(bootstrap, topic).values()
               for m in part]
    return sorted(records, key=lambda r: r["position"])
